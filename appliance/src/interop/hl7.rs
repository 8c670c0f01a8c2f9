//! A small HL7 v2 message builder: segments of fields, components and sub-components with the
//! standard delimiters (`|^~\&`), every value escaped, segments ended by a carriage return; and
//! the reading of an acknowledgement (`MSA`, `ERR`).
//!
//! What it is for: writing the few segments the appliance sends (an ORU^R01 is assembled from
//! typed values in [`crate::interop::oru`]) and reading the answer to them. What it is not for:
//! parsing arbitrary HL7, or checking a message against the standard (the tests validate what it
//! writes with an outside validator, `hl7apy`).

/// One field: components, each of sub-components (already plain text: escaped when written).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Field(Vec<Vec<String>>);

impl Field {
    /// An empty field.
    pub fn empty() -> Self {
        Self::default()
    }

    /// A field of one text value.
    pub fn text(value: impl Into<String>) -> Self {
        Self(vec![vec![value.into()]])
    }

    /// A field of components (`a^b^c`), each one text value; trailing empty ones are dropped.
    pub fn components<S: AsRef<str>>(parts: &[S]) -> Self {
        Self(parts.iter().map(|p| vec![p.as_ref().to_owned()]).collect())
    }

    /// A field whose components have sub-components (`a&b^c`).
    pub fn nested(parts: Vec<Vec<String>>) -> Self {
        Self(parts)
    }

    fn write(&self, out: &mut String) {
        let mut components: Vec<String> = self
            .0
            .iter()
            .map(|subs| {
                let mut subs: Vec<String> = subs.iter().map(|s| escape(s)).collect();
                while subs.last().is_some_and(String::is_empty) {
                    subs.pop();
                }
                subs.join("&")
            })
            .collect();
        while components.last().is_some_and(String::is_empty) {
            components.pop();
        }
        out.push_str(&components.join("^"));
    }
}

/// One segment: its id and fields 1, 2, … (for `MSH`, fields from MSH-3 on: MSH-1 and MSH-2,
/// the delimiters, are written by [`Segment::write`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    id: &'static str,
    fields: Vec<Field>,
}

impl Segment {
    /// A segment with no fields yet.
    pub fn new(id: &'static str) -> Self {
        Self {
            id,
            fields: Vec::new(),
        }
    }

    /// Sets field number `n` (1-based, as the standard numbers them; for `MSH`, n ≥ 3).
    #[must_use]
    pub fn set(mut self, n: usize, field: Field) -> Self {
        let index = if self.id == "MSH" {
            n.saturating_sub(2)
        } else {
            n
        };
        if index == 0 {
            return self;
        }
        if self.fields.len() < index {
            self.fields.resize(index, Field::empty());
        }
        self.fields[index - 1] = field;
        self
    }

    /// Sets field `n` to one text value.
    #[must_use]
    pub fn text(self, n: usize, value: impl Into<String>) -> Self {
        self.set(n, Field::text(value))
    }

    /// Sets field `n` to components.
    #[must_use]
    pub fn components<S: AsRef<str>>(self, n: usize, parts: &[S]) -> Self {
        self.set(n, Field::components(parts))
    }

    /// The segment as text, without its terminating carriage return.
    pub fn write(&self) -> String {
        let mut out = String::from(self.id);
        if self.id == "MSH" {
            out.push_str("|^~\\&");
        }
        let mut fields: Vec<String> = self
            .fields
            .iter()
            .map(|f| {
                let mut text = String::new();
                f.write(&mut text);
                text
            })
            .collect();
        while fields.last().is_some_and(String::is_empty) {
            fields.pop();
        }
        for field in fields {
            out.push('|');
            out.push_str(&field);
        }
        out
    }
}

/// A message: its segments, each ended by a carriage return.
pub fn message(segments: &[Segment]) -> String {
    let mut out = String::new();
    for segment in segments {
        out.push_str(&segment.write());
        out.push('\r');
    }
    out
}

/// Escapes a value for any field: the delimiters and the escape character become escape
/// sequences (`\F\ \S\ \T\ \R\ \E\`), a carriage return or line feed a hexadecimal one (`\X0D\`,
/// `\X0A\`); every other character is kept.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '|' => out.push_str("\\F\\"),
            '^' => out.push_str("\\S\\"),
            '&' => out.push_str("\\T\\"),
            '~' => out.push_str("\\R\\"),
            '\\' => out.push_str("\\E\\"),
            '\r' => out.push_str("\\X0D\\"),
            '\n' => out.push_str("\\X0A\\"),
            other => out.push(other),
        }
    }
    out
}

/// What an acknowledgement said (MSA-1), with MSA-2 and the text of MSA-3 and any ERR segments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acknowledgement {
    /// `AA`, `AE`, `AR` (or the enhanced-mode `CA`, `CE`, `CR`).
    pub code: String,
    /// The control id it acknowledges.
    pub control_id: String,
    /// MSA-3 and the ERR segments' texts, joined.
    pub text: String,
}

/// Reads an acknowledgement; `None` when it has no MSA segment with a code.
pub fn read_acknowledgement(ack: &str) -> Option<Acknowledgement> {
    let segments: Vec<&str> = ack.split(['\r', '\n']).filter(|s| !s.is_empty()).collect();
    let field_sep = segments
        .iter()
        .find(|s| s.starts_with("MSH"))
        .and_then(|msh| msh.chars().nth(3))
        .unwrap_or('|');
    let msa: Vec<&str> = segments
        .iter()
        .find(|s| s.starts_with("MSA"))?
        .split(field_sep)
        .collect();
    let code = msa.get(1).map(|c| c.trim().to_owned())?;
    if code.is_empty() {
        return None;
    }
    let mut texts: Vec<String> = msa
        .get(3)
        .filter(|t| !t.is_empty())
        .map(|t| (*t).to_owned())
        .into_iter()
        .collect();
    for err in segments.iter().filter(|s| s.starts_with("ERR")) {
        let text = err
            .split(field_sep)
            .skip(1)
            .filter(|f| !f.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if !text.is_empty() {
            texts.push(text);
        }
    }
    Some(Acknowledgement {
        code,
        control_id: msa.get(2).map(|c| (*c).to_owned()).unwrap_or_default(),
        text: texts.join("; "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters_in_values_are_escaped_and_nothing_else_changes() {
        assert_eq!(escape("a|b^c&d~e\\f"), "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f");
        assert_eq!(escape("line\r\nnext"), "line\\X0D\\\\X0A\\next");
        assert_eq!(
            escape("µNMR ΔR2 4.28 /(7500.uL)"),
            "µNMR ΔR2 4.28 /(7500.uL)"
        );
        let segment = Segment::new("NTE")
            .text(1, "1")
            .text(3, "Smith|Jones^Jr & co~x");
        assert_eq!(
            segment.write(),
            "NTE|1||Smith\\F\\Jones\\S\\Jr \\T\\ co\\R\\x"
        );
    }

    #[test]
    fn segments_drop_trailing_empties_and_msh_carries_its_delimiters() {
        let msh = Segment::new("MSH")
            .text(3, "FERROCOUNT")
            .components(9, &["ORU", "R01", "ORU_R01"])
            .text(10, "FC00000001")
            .text(12, "2.5.1");
        assert_eq!(
            msh.write(),
            "MSH|^~\\&|FERROCOUNT||||||ORU^R01^ORU_R01|FC00000001||2.5.1"
        );
        let obx = Segment::new("OBX").components(6, &["/mL", "", "UCUM", "", ""]);
        assert_eq!(obx.write(), "OBX||||||/mL^^UCUM");
        let nested =
            Segment::new("SPM").set(2, Field::nested(vec![vec!["ACC-1".into(), "LAB&X".into()]]));
        assert_eq!(nested.write(), "SPM||ACC-1&LAB\\T\\X");
        assert_eq!(message(&[Segment::new("A"), Segment::new("B")]), "A\rB\r");
    }

    #[test]
    fn acknowledgements_are_read_with_their_reasons() {
        let ack = "MSH|^~\\&|LIS|H|FC|L|20261202||ACK^R01|A1|P|2.5.1\rMSA|AE|FC00000007|bad PID\rERR|||207^Application internal error^HL70357|E\r";
        let read = read_acknowledgement(ack).unwrap();
        assert_eq!(read.code, "AE");
        assert_eq!(read.control_id, "FC00000007");
        assert!(read.text.starts_with("bad PID; "), "{}", read.text);
        assert!(read.text.contains("207^Application internal error"));
        let accepted = read_acknowledgement("MSH|^~\\&\rMSA|AA|FC1\r").unwrap();
        assert_eq!(accepted.code, "AA");
        assert_eq!(accepted.text, "");
        assert_eq!(read_acknowledgement("MSH|^~\\&\r"), None);
        assert_eq!(read_acknowledgement("MSH|^~\\&\rMSA||FC1\r"), None);
    }
}
