//! Small helpers shared by the projectors.

use std::io::Write as _;

use chrono::{DateTime, NaiveDate, Utc};
use domain::values::Money;
use rust_decimal::Decimal;
use sqlx::postgres::PgCopyIn;
use sqlx::PgConnection;

/// A money value as its two columns.
pub fn money(m: &Money) -> (Decimal, String) {
    (m.amount(), m.currency().as_str().to_owned())
}

/// The UTC calendar day of an instant.
pub fn day(t: DateTime<Utc>) -> NaiveDate {
    t.date_naive()
}

/// Rows for `COPY … FROM STDIN` in PostgreSQL's text format.
#[derive(Default)]
pub struct CopyRows {
    buf: Vec<u8>,
    row_open: bool,
}

impl CopyRows {
    /// Appends one field to the current row.
    pub fn field(&mut self, value: impl CopyField) -> &mut Self {
        if self.row_open {
            self.buf.push(b'\t');
        }
        self.row_open = true;
        value.write(&mut self.buf);
        self
    }

    /// Ends the current row.
    pub fn end_row(&mut self) {
        self.buf.push(b'\n');
        self.row_open = false;
    }
}

/// Bytes of rows sent at a time: PostgreSQL parses one chunk while the
/// next is written.
const COPY_CHUNK: usize = 1 << 20;

/// `COPY table (columns) FROM STDIN`, streamed: the fastest way to add rows
/// a projector knows are new (a rebuild adds almost only those: a million
/// seats of ten thousand flights). Starts the COPY only once there is a
/// row to send.
pub struct CopyIn<'c> {
    conn: Option<&'c mut PgConnection>,
    copy: Option<PgCopyIn<&'c mut PgConnection>>,
    statement: String,
    rows: CopyRows,
}

impl<'c> CopyIn<'c> {
    pub fn new(conn: &'c mut PgConnection, table: &str, columns: &str) -> Self {
        Self {
            conn: Some(conn),
            copy: None,
            statement: format!("COPY {table} ({columns}) FROM STDIN"),
            rows: CopyRows::default(),
        }
    }

    /// The row being written: add its fields, then [`CopyIn::end_row`].
    pub fn row(&mut self) -> &mut CopyRows {
        &mut self.rows
    }

    pub async fn end_row(&mut self) -> sqlx::Result<()> {
        self.rows.end_row();
        if self.rows.buf.len() >= COPY_CHUNK {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> sqlx::Result<()> {
        if self.copy.is_none() {
            if let Some(conn) = self.conn.take() {
                self.copy = Some(conn.copy_in_raw(&self.statement).await?);
            }
        }
        let Some(copy) = self.copy.as_mut() else {
            return Ok(());
        };
        if let Err(e) = copy.send(std::mem::take(&mut self.rows.buf)).await {
            // The connection is unusable until the copy ends either way.
            if let Some(copy) = self.copy.take() {
                let _ = copy.abort(e.to_string()).await;
            }
            return Err(e);
        }
        Ok(())
    }

    /// Sends what is left and ends the COPY.
    pub async fn finish(mut self) -> sqlx::Result<()> {
        if !self.rows.buf.is_empty() {
            self.flush().await?;
        }
        match self.copy.take() {
            Some(copy) => copy.finish().await.map(|_| ()),
            None => Ok(()),
        }
    }
}

/// A value as a field of COPY's text format.
pub trait CopyField {
    fn write(&self, out: &mut Vec<u8>);
}

fn escaped(s: &str, out: &mut Vec<u8>) {
    for b in s.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

impl CopyField for &str {
    fn write(&self, out: &mut Vec<u8>) {
        escaped(self, out);
    }
}

impl CopyField for &String {
    fn write(&self, out: &mut Vec<u8>) {
        escaped(self, out);
    }
}

impl CopyField for uuid::Uuid {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(
            self.hyphenated()
                .encode_lower(&mut uuid::Uuid::encode_buffer())
                .as_bytes(),
        );
    }
}

impl CopyField for i16 {
    fn write(&self, out: &mut Vec<u8>) {
        let _ = write!(out, "{self}");
    }
}

impl CopyField for i32 {
    fn write(&self, out: &mut Vec<u8>) {
        let _ = write!(out, "{self}");
    }
}

impl CopyField for bool {
    fn write(&self, out: &mut Vec<u8>) {
        out.push(if *self { b't' } else { b'f' });
    }
}

impl CopyField for Decimal {
    fn write(&self, out: &mut Vec<u8>) {
        let _ = write!(out, "{self}");
    }
}

impl CopyField for NaiveDate {
    fn write(&self, out: &mut Vec<u8>) {
        let _ = write!(out, "{}", self.format("%Y-%m-%d"));
    }
}

impl CopyField for DateTime<Utc> {
    /// Truncated to microseconds, as sqlx binds a timestamptz (PostgreSQL
    /// would round more digits): a row reads the same however it was written.
    fn write(&self, out: &mut Vec<u8>) {
        let _ = write!(out, "{}", self.format("%Y-%m-%dT%H:%M:%S%.6fZ"));
    }
}

impl<T: CopyField> CopyField for Option<T> {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Some(v) => v.write(out),
            None => out.extend_from_slice(b"\\N"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_separators_and_writes_nulls() {
        let mut rows = CopyRows::default();
        rows.field("a\tb\\c\nd").field(None::<i32>).field(true);
        rows.end_row();
        rows.field(Some(7i16)).field("x").field(false);
        rows.end_row();
        let t = "2030-06-01T09:00:00.123456789Z"
            .parse::<DateTime<Utc>>()
            .unwrap();
        rows.field(t);
        rows.end_row();
        assert_eq!(
            String::from_utf8(rows.buf).unwrap(),
            "a\\tb\\\\c\\nd\t\\N\tt\n7\tx\tf\n2030-06-01T09:00:00.123456Z\n"
        );
    }
}
