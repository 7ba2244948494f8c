//! W3C Trace Context `traceparent` headers (version 00).

use rand::Rng;
use std::fmt;

/// A parsed `traceparent`: `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub flags: u8,
}

impl TraceParent {
    /// A fresh, sampled root context with random non-zero ids.
    pub fn random() -> Self {
        let mut rng = rand::rng();
        let mut trace_id = [0u8; 16];
        let mut span_id = [0u8; 8];
        // All-zero ids are invalid per the spec; retry until non-zero.
        while trace_id == [0; 16] {
            rng.fill(&mut trace_id);
        }
        while span_id == [0; 8] {
            rng.fill(&mut span_id);
        }
        TraceParent {
            trace_id,
            span_id,
            flags: 0x01,
        }
    }

    /// Parses a `traceparent` header value; `None` if it is malformed.
    pub fn parse(s: &str) -> Option<Self> {
        // Split in place: one per task a worker runs, so no Vec of parts.
        let mut parts = s.trim().split('-');
        let (version, trace, span, flags_hex) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version.len() != 2 || version == "ff" {
            return None;
        }
        let version = u8::from_str_radix(version, 16).ok()?;
        // Version 00 has exactly four fields; later versions may append more.
        if version == 0 && parts.next().is_some() {
            return None;
        }
        let mut trace_id = [0u8; 16];
        let mut span_id = [0u8; 8];
        let mut flags = [0u8; 1];
        decode_hex(trace, &mut trace_id)?;
        decode_hex(span, &mut span_id)?;
        decode_hex(flags_hex, &mut flags)?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(TraceParent {
            trace_id,
            span_id,
            flags: flags[0],
        })
    }

    /// The trace id as 32 lowercase hex characters.
    pub fn trace_id_hex(&self) -> String {
        encode_hex(&self.trace_id)
    }

    /// The span id as 16 lowercase hex characters.
    pub fn span_id_hex(&self) -> String {
        encode_hex(&self.span_id)
    }
}

impl fmt::Display for TraceParent {
    /// `00-<trace id>-<span id>-<flags>`, formatted on the stack (one per
    /// sentinel, so no per-part strings).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = *b"00-00000000000000000000000000000000-0000000000000000-00";
        let hex = |src: &[u8], dst: &mut [u8]| {
            hex::encode_to_slice(src, dst).expect("sized for the field")
        };
        hex(&self.trace_id, &mut buf[3..35]);
        hex(&self.span_id, &mut buf[36..52]);
        hex(&[self.flags], &mut buf[53..55]);
        f.write_str(std::str::from_utf8(&buf).expect("hex is ASCII"))
    }
}

/// Lowercase hex only (the spec forbids uppercase), exactly `out.len()` bytes.
fn decode_hex(s: &str, out: &mut [u8]) -> Option<()> {
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    hex::decode_to_slice(s, out).ok()
}

fn encode_hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let tp = TraceParent::random();
        let s = tp.to_string();
        assert_eq!(s.len(), 55);
        assert_eq!(TraceParent::parse(&s), Some(tp));
    }

    #[test]
    fn parses_spec_example() {
        let tp =
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(tp.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(tp.span_id_hex(), "00f067aa0ba902b7");
        assert_eq!(tp.flags, 1);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
    }
}
