//! The TLS stream of our FTPS connections: tokio-rustls, but every command reaches the server.
//!
//! tokio-rustls accepts a write once rustls has encrypted it, even when the socket was not
//! writable at that moment; the record then waits in rustls until the stream is flushed.
//! suppaftp writes a command and then only reads, never flushing, so now and then (about one
//! command in a thousand on a busy loopback) a command never left the machine and its reply
//! was waited for until the timeout: the 30-second MDTM stalls of wide listings on vsftpd. This
//! stream flushes after every write and, before every read, pushes out whatever is still
//! pending (registering for writability too, so the read is woken when it can go out).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use rustls::pki_types::ServerName;
use suppaftp::tokio::{AsyncTlsConnector, TokioTlsStream};
use suppaftp::{FtpError, FtpResult};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Connects with a rustls configuration; see the module's header.
pub struct FlushingTlsConnector(pub tokio_rustls::TlsConnector);

impl std::fmt::Debug for FlushingTlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlushingTlsConnector")
    }
}

#[async_trait::async_trait]
impl AsyncTlsConnector for FlushingTlsConnector {
    type Stream = FlushingTls;

    async fn connect(&self, domain: &str, stream: TcpStream) -> FtpResult<FlushingTls> {
        let name = ServerName::try_from(domain.to_owned())
            .map_err(|e| FtpError::SecureError(e.to_string()))?;
        self.0
            .connect(name, stream)
            .await
            .map(|inner| FlushingTls { inner })
            .map_err(|e| FtpError::SecureError(e.to_string()))
    }
}

#[derive(Debug)]
pub struct FlushingTls {
    inner: TlsStream<TcpStream>,
}

impl AsyncRead for FlushingTls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // A reply only comes once our command went out.
        if let Poll::Ready(Err(e)) = Pin::new(&mut self.inner).poll_flush(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for FlushingTls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // Older data first; nothing of `buf` is taken until it is out.
        std::task::ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
        let n = std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, buf))?;
        // Taken: push it out now if the socket lets us; otherwise the next read or write does.
        if let Poll::Ready(Err(e)) = Pin::new(&mut self.inner).poll_flush(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl TokioTlsStream for FlushingTls {
    type InnerStream = TlsStream<TcpStream>;

    fn tcp_stream(self) -> FtpResult<TcpStream> {
        Ok(self.inner.into_inner().0)
    }

    fn get_ref(&self) -> &TcpStream {
        self.inner.get_ref().0
    }

    fn mut_ref(&mut self) -> &mut Self::InnerStream {
        &mut self.inner
    }
}
