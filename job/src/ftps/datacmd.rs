//! A listing command whose transfer-complete reply we read ourselves: servers that cut a
//! listing say so only in that reply's text, which suppaftp's `mlsd()`/`list()` discard.

use suppaftp::{FtpError, Status};
use tokio::io::{AsyncWriteExt, BufReader};

use super::conn::Ftp;

/// The lines a listing command sent and the full text of its transfer-complete reply.
pub struct ListingReply {
    pub lines: Vec<String>,
    pub reply: String,
}

/// Runs `command` (`MLSD dir`, `LIST -a`, ...) and reads its data and completion reply.
pub async fn listing(ftp: &mut Ftp, command: &str) -> Result<ListingReply, FtpError> {
    let (_, stream) = ftp
        .custom_data_command(command, &[Status::AboutToSend, Status::AlreadyOpen])
        .await?;
    let mut reader = BufReader::new(stream);
    let lines = Ftp::get_lines_from_stream(&mut reader).await?;
    let mut stream = reader.into_inner();
    // Some servers send the reply only once our side of the data connection is closed.
    let _ = stream.get_mut().shutdown().await;
    // The stream is still alive, so nothing else reads this reply first.
    let reply = ftp
        .read_response_in(&[Status::ClosingDataConnection, Status::RequestedFileActionOk])
        .await;
    // suppaftp considers the data connection open until a stream is finished or aborted. After
    // the reply, ABOR has nothing to abort: servers answer 225 or 226, and the control connection
    // is in step again (`finish()` would wait for a second completion reply that never comes).
    match ftp.abort(stream).await {
        Ok(()) => {}
        Err(FtpError::UnexpectedResponse(r)) if (200..300).contains(&r.status.code()) => {}
        Err(FtpError::UnexpectedResponse(r)) if r.status == Status::Unknown => {
            // 2xx codes suppaftp does not name are read as Unknown; anything else is an error.
            let text = String::from_utf8_lossy(&r.body);
            if !text.starts_with('2') {
                return Err(FtpError::UnexpectedResponse(r));
            }
        }
        Err(err) => return Err(err),
    }
    let reply = reply?;
    Ok(ListingReply {
        lines,
        reply: String::from_utf8_lossy(&reply.body).trim().to_string(),
    })
}
