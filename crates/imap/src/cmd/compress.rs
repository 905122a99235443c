//! COMPRESS (RFC 4978): DEFLATE only; the stream itself is `crate::compress`.

use std::io;

use crate::session::{Done, Session};

impl Session {
    pub(crate) async fn compress(&mut self, tag: &str, mechanism: &str) -> io::Result<Done> {
        if self.conn.compressed() {
            return Ok(Done::no("[COMPRESSIONACTIVE] DEFLATE active via COMPRESS."));
        }
        if mechanism != "DEFLATE" {
            return Ok(Done::bad("Unknown compression mechanism."));
        }
        // The OK is the last thing sent uncompressed.
        self.conn
            .write(format!("{tag} OK DEFLATE active.\r\n").as_bytes())
            .await?;
        self.conn.start_deflate().await?;
        Ok(Done::written())
    }
}
