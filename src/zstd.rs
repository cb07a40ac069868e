//! A streaming zstd reader (pure Rust, ruzstd) for repository metadata and
//! package payloads: several frames in a row, skippable frames skipped, each
//! frame's content checksum checked.

use std::io::{self, BufRead, Read};

/// A zstd stream of one or more frames (skippable frames skipped), each
/// checked against its content checksum when it has one.
pub(crate) struct ZstdFrames<R> {
    source: R,
    frame: ruzstd::decoding::FrameDecoder,
    in_frame: bool,
    frames: u64,
}

impl<R: BufRead> ZstdFrames<R> {
    /// Reads the frames of `source` one after the other.
    pub(crate) fn new(source: R) -> Self {
        ZstdFrames {
            source,
            frame: ruzstd::decoding::FrameDecoder::new(),
            in_frame: false,
            frames: 0,
        }
    }
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use ruzstd::decoding::BlockDecodingStrategy;
        use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
        if buf.is_empty() {
            return Ok(0);
        }
        let invalid =
            |e: &dyn std::fmt::Display| io::Error::new(io::ErrorKind::InvalidData, e.to_string());
        loop {
            if !self.in_frame {
                if self.source.fill_buf()?.is_empty() {
                    if self.frames == 0 {
                        return Err(invalid(&"empty stream"));
                    }
                    return Ok(0);
                }
                match self.frame.reset(&mut self.source) {
                    Ok(()) => {
                        self.in_frame = true;
                        self.frames += 1;
                    }
                    Err(FrameDecoderError::ReadFrameHeaderError(
                        ReadFrameHeaderError::SkipFrame { length, .. },
                    )) => {
                        let length = u64::from(length);
                        let skipped =
                            io::copy(&mut (&mut self.source).take(length), &mut io::sink())?;
                        if skipped != length {
                            return Err(invalid(&"truncated skippable frame"));
                        }
                        continue;
                    }
                    Err(e) => return Err(invalid(&e)),
                }
            }
            while self.frame.can_collect() == 0 && !self.frame.is_finished() {
                self.frame
                    .decode_blocks(&mut self.source, BlockDecodingStrategy::UptoBlocks(1))
                    .map_err(|e| invalid(&e))?;
            }
            let n = self.frame.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            // The frame is decoded and drained.
            if let (Some(stored), Some(computed)) = (
                self.frame.get_checksum_from_data(),
                self.frame.get_calculated_checksum(),
            ) && stored != computed
            {
                return Err(invalid(&"frame content checksum mismatch"));
            }
            self.in_frame = false;
        }
    }
}
