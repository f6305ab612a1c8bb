//! Server-sent events, as far as a chat-completions stream needs them: `data:` lines joined per event,
//! dispatched at a blank line; comments, `event:`, `id:` and `retry:` are read and ignored.
//!
//! Written here rather than taken from a crate for two properties the stream must have: decoding is linear
//! in the input however it is split into reads (a reader that fell behind gets many events in one read),
//! and an upstream that never ends a line or an event cannot make us buffer without limit.

/// One event may not exceed this (data plus the line being read). DashScope's chunks are a few KiB.
const MAX_EVENT_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SseError {
    #[error("an SSE event exceeds {limit} bytes")]
    TooLarge { limit: usize },
    #[error("an SSE event is not valid UTF-8")]
    NotUtf8,
}

/// Feed it the body's bytes with [`SseDecoder::push`]; take complete events with [`SseDecoder::next_event`].
#[derive(Debug)]
pub(crate) struct SseDecoder {
    /// Bytes received and not yet consumed; `buf[..start]` is consumed, compacted away on the next push.
    buf: Vec<u8>,
    start: usize,
    /// `buf[start..scanned]` holds no line end: a line arriving in many small reads is searched once.
    scanned: usize,
    /// The current event's data lines, each followed by `\n` (the last one is removed on dispatch); empty
    /// until the event has a `data` line, even an empty one.
    data: Vec<u8>,
    /// The previous line ended with CR: an LF right after it belongs to the same line ending, even when
    /// it arrives in the next read.
    after_cr: bool,
    limit: usize,
    /// Bytes the line-end search has looked at, for the test that proves it linear.
    #[cfg(test)]
    examined: usize,
}

impl Default for SseDecoder {
    fn default() -> Self {
        SseDecoder::with_limit(MAX_EVENT_BYTES)
    }
}

impl SseDecoder {
    pub(crate) fn with_limit(limit: usize) -> Self {
        SseDecoder {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            data: Vec::new(),
            after_cr: false,
            limit,
            #[cfg(test)]
            examined: 0,
        }
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.scanned = self.scanned.saturating_sub(self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The data of the next complete event, `None` when more bytes are needed. An event still open when
    /// the body ends is never dispatched (as the SSE spec says); the caller decides what EOF means.
    pub(crate) fn next_event(&mut self) -> Result<Option<String>, SseError> {
        loop {
            if self.start == self.buf.len() {
                return Ok(None); // `after_cr` waits for the next byte
            }
            if std::mem::take(&mut self.after_cr) && self.buf[self.start] == b'\n' {
                self.start += 1;
            }
            let from = self.scanned.max(self.start);
            let found = self.buf[from..].iter().position(|&b| b == b'\n' || b == b'\r');
            #[cfg(test)]
            {
                self.examined += found.map_or(self.buf.len() - from, |at| at + 1);
            }
            let Some(end) = found.map(|at| from - self.start + at) else {
                self.scanned = self.buf.len();
                if self.data.len() + (self.buf.len() - self.start) > self.limit {
                    return Err(SseError::TooLarge { limit: self.limit });
                }
                return Ok(None);
            };
            self.after_cr = self.buf[self.start + end] == b'\r';
            let line_start = self.start;
            self.start += end + 1;
            if end == 0 {
                if let Some(event) = self.dispatch()? {
                    return Ok(Some(event));
                }
                continue;
            }
            self.field(line_start, line_start + end)?;
        }
    }

    /// One non-empty line, `buf[from..to]`.
    fn field(&mut self, from: usize, to: usize) -> Result<(), SseError> {
        let line = &self.buf[from..to];
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(0) => return Ok(()), // a comment (keep-alive)
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        if name != b"data" {
            return Ok(());
        }
        if self.data.len() + value.len() + 1 > self.limit {
            return Err(SseError::TooLarge { limit: self.limit });
        }
        self.data.extend_from_slice(value);
        self.data.push(b'\n');
        Ok(())
    }

    fn dispatch(&mut self) -> Result<Option<String>, SseError> {
        let mut data = std::mem::take(&mut self.data);
        if data.pop().is_none() {
            return Ok(None); // no `data` line: nothing to dispatch
        }
        String::from_utf8(data).map(Some).map_err(|_| SseError::NotUtf8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(decoder: &mut SseDecoder) -> Vec<String> {
        std::iter::from_fn(|| decoder.next_event().expect("decodes")).collect()
    }

    fn decode_split(input: &[u8], split: usize) -> Vec<String> {
        let mut decoder = SseDecoder::default();
        let mut out = Vec::new();
        for piece in input.chunks(split.max(1)) {
            decoder.push(piece);
            out.extend(events(&mut decoder));
        }
        out
    }

    #[test]
    fn joins_data_lines_and_ignores_other_fields() {
        let input = b": keep-alive\nevent: x\nid: 7\nretry: 10\ndata: a\ndata:b\ndata\n\ndata: {\"k\":1}\n\n";
        assert_eq!(decode_split(input, input.len()), ["a\nb\n", "{\"k\":1}"]);
    }

    #[test]
    fn every_line_ending_and_every_split_gives_the_same_events() {
        for eol in ["\n", "\r\n", "\r"] {
            let input = format!("data: one{eol}{eol}data: two{eol}data: 2{eol}{eol}:c{eol}data: [DONE]{eol}{eol}");
            for split in 1..input.len() {
                assert_eq!(
                    decode_split(input.as_bytes(), split),
                    ["one", "two\n2", "[DONE]"],
                    "eol {eol:?} split {split}"
                );
            }
        }
    }

    #[test]
    fn an_event_open_at_the_end_is_not_dispatched() {
        assert_eq!(decode_split(b"data: done\n\ndata: cut", 4), ["done"]);
    }

    #[test]
    fn a_multibyte_character_split_across_reads_survives() {
        let input = "data: 时间\n\n".as_bytes();
        assert_eq!(decode_split(input, 1), ["时间"]);
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let mut decoder = SseDecoder::default();
        decoder.push(b"data: \xff\n\n");
        assert_eq!(decoder.next_event(), Err(SseError::NotUtf8));
    }

    #[test]
    fn a_line_that_never_ends_is_bounded() {
        let mut decoder = SseDecoder::with_limit(64);
        decoder.push(b"data: ");
        assert_eq!(decoder.next_event(), Ok(None));
        decoder.push(&[b'x'; 64]);
        assert_eq!(decoder.next_event(), Err(SseError::TooLarge { limit: 64 }));
    }

    #[test]
    fn an_event_that_never_ends_is_bounded() {
        let mut decoder = SseDecoder::with_limit(64);
        let mut result = Ok(None);
        for _ in 0..20 {
            decoder.push(b"data: 0123456789\n");
            result = decoder.next_event();
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(SseError::TooLarge { limit: 64 }));
    }

    #[test]
    fn a_long_line_in_tiny_reads_is_searched_once() {
        let line = format!("data: {}\n\n", "x".repeat(100_000));
        let mut decoder = SseDecoder::default();
        let mut out = Vec::new();
        for byte in line.as_bytes() {
            decoder.push(std::slice::from_ref(byte));
            out.extend(events(&mut decoder));
        }
        assert_eq!(out.len(), 1);
        assert!(decoder.examined <= 2 * line.len(), "examined {} bytes of {}", decoder.examined, line.len());
    }

    #[test]
    fn many_events_in_one_read_are_consumed_in_place() {
        let input = "data: x\n\n".repeat(10_000);
        let mut decoder = SseDecoder::default();
        decoder.push(input.as_bytes());
        assert_eq!(events(&mut decoder).len(), 10_000);
        // Nothing is copied until the next push, which drops the consumed prefix at once.
        decoder.push(b"data: y\n\n");
        assert_eq!(decoder.buf.len(), 9);
        assert_eq!(events(&mut decoder), ["y"]);
    }
}
