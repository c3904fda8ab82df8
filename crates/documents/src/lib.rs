//! The documents customers keep: the e-ticket of a booking and the invoice
//! of its payment, as PDF.
//!
//! Rendering is pure: the caller (the application layer) reads the booking,
//! its flight and its payment, fills in a [`TicketView`] or an
//! [`InvoiceView`] with the text to print, and gets the file's bytes back.
//! Text is set in the PDF's built-in Helvetica, so any reader (and
//! `pdftotext`) shows it without embedded fonts; each ticket number also
//! gets a QR code drawn as vector squares, for gate scanners.

use printpdf::{
    path::PaintMode, BuiltinFont, IndirectFontRef, Mm, PdfDocument, PdfLayerReference, Rect,
};
use qrcode::{Color, QrCode};

/// A4, in millimetres.
const WIDTH: f32 = 210.0;
const HEIGHT: f32 = 297.0;
const MARGIN: f32 = 18.0;

#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("the PDF could not be written: {0}")]
    Pdf(#[from] printpdf::Error),
    #[error("the QR code could not be made: {0}")]
    Qr(#[from] qrcode::types::QrError),
}

/// One flight as a ticket prints it.
#[derive(Debug, Clone)]
pub struct FlightView {
    pub flight_number: String,
    pub airline: String,
    pub origin: String,
    pub destination: String,
    /// Already formatted, e.g. `2026-12-01 09:00 UTC`.
    pub departs_at: String,
    pub arrives_at: String,
}

/// One passenger on the e-ticket.
#[derive(Debug, Clone)]
pub struct TicketPassenger {
    /// `Ada Lovelace`, or `(erased)` once the customer's data is shredded.
    pub name: String,
    /// `adult`, `child` or `infant`.
    pub kind: String,
    /// The seat, or for an infant `on the lap of 12A`.
    pub seat: String,
    pub cabin: String,
    pub ticket_number: Option<String>,
    /// The flight number the ticket is for, on a booking of several
    /// flights (a ticket per passenger per flight); `None` on one flight.
    pub flight: Option<String>,
}

/// The e-ticket of a booking.
#[derive(Debug, Clone)]
pub struct TicketView {
    pub pnr: String,
    pub status: String,
    pub segments: Vec<FlightView>,
    pub passengers: Vec<TicketPassenger>,
}

/// One invoice line.
#[derive(Debug, Clone)]
pub struct InvoiceRow {
    pub description: String,
    pub quantity: u32,
    /// Amounts already formatted with their currency, e.g. `420.00 USD`.
    pub unit_price: String,
    pub amount: String,
    /// A reduction (a discount): printed as taken off.
    pub credit: bool,
}

/// The invoice of a booking's payment.
#[derive(Debug, Clone)]
pub struct InvoiceView {
    pub number: String,
    pub pnr: String,
    pub issued_at: String,
    pub lines: Vec<InvoiceRow>,
    pub subtotal: String,
    /// E.g. `20 %`.
    pub tax_rate: String,
    pub tax: String,
    pub total: String,
}

/// A page being written top to bottom.
struct Page {
    layer: PdfLayerReference,
    regular: IndirectFontRef,
    bold: IndirectFontRef,
    /// The baseline of the next line, from the bottom of the page.
    y: f32,
}

impl Page {
    fn text(&mut self, text: &str, size: f32, x: f32, bold: bool) {
        let font = if bold { &self.bold } else { &self.regular };
        self.layer
            .use_text(printable(text), size, Mm(x), Mm(self.y), font);
    }

    fn line(&mut self, text: &str, size: f32, bold: bool) {
        self.text(text, size, MARGIN, bold);
        self.down(size * 0.5);
    }

    fn down(&mut self, mm: f32) {
        self.y -= mm;
    }

    /// A QR code of `data`, `side` mm wide, its top left corner at `x` and
    /// the current line.
    fn qr(&mut self, data: &str, x: f32, side: f32) -> Result<(), DocumentError> {
        let code = QrCode::new(data.as_bytes())?;
        let modules = code.width();
        let cell = side / modules as f32;
        let top = self.y;
        for (i, color) in code.to_colors().into_iter().enumerate() {
            if color == Color::Dark {
                let (col, row) = ((i % modules) as f32, (i / modules) as f32);
                let (llx, ury) = (x + col * cell, top - row * cell);
                self.layer.add_rect(
                    Rect::new(Mm(llx), Mm(ury - cell), Mm(llx + cell), Mm(ury))
                        .with_mode(PaintMode::Fill),
                );
            }
        }
        Ok(())
    }
}

fn document(title: &str) -> Result<(printpdf::PdfDocumentReference, Page), DocumentError> {
    let (doc, page, layer) = PdfDocument::new(title, Mm(WIDTH), Mm(HEIGHT), "content");
    let regular = doc.add_builtin_font(BuiltinFont::Helvetica)?;
    let bold = doc.add_builtin_font(BuiltinFont::HelveticaBold)?;
    let layer = doc.get_page(page).get_layer(layer);
    Ok((
        doc,
        Page {
            layer,
            regular,
            bold,
            y: HEIGHT - MARGIN,
        },
    ))
}

/// The built-in fonts print Latin-1 only: anything else is shown as `?`
/// rather than as garbage.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if (c as u32) < 0x100 && !c.is_control() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// The e-ticket: booking reference, flights, and per passenger their seat
/// and ticket number with its QR code.
pub fn ticket_pdf(view: &TicketView) -> Result<Vec<u8>, DocumentError> {
    let (doc, mut page) = document(&format!("E-ticket {}", view.pnr))?;
    page.line("E-ticket", 20.0, true);
    page.down(2.0);
    page.line(
        &format!("Booking reference (PNR): {}", view.pnr),
        12.0,
        true,
    );
    page.line(&format!("Status: {}", view.status), 10.0, false);
    page.down(4.0);
    for (n, f) in view.segments.iter().enumerate() {
        page.line(
            &format!(
                "Flight {} of {}: {} {} ({})",
                n + 1,
                view.segments.len(),
                f.flight_number,
                f.airline,
                format_args!("{} to {}", f.origin, f.destination)
            ),
            11.0,
            true,
        );
        page.line(
            &format!("Departs {}    Arrives {}", f.departs_at, f.arrives_at),
            10.0,
            false,
        );
        page.down(2.0);
    }
    page.down(4.0);
    page.line("Passengers", 13.0, true);
    page.down(2.0);
    for p in &view.passengers {
        if page.y < MARGIN + 40.0 {
            break;
        }
        let top = page.y;
        page.line(&p.name, 11.0, true);
        let on = p
            .flight
            .as_ref()
            .map(|f| format!(" - flight {f}"))
            .unwrap_or_default();
        page.line(
            &format!("{} - {} - seat {}{on}", p.kind, p.cabin, p.seat),
            10.0,
            false,
        );
        match &p.ticket_number {
            Some(number) => {
                page.line(&format!("Ticket number: {number}"), 10.0, false);
                let end = page.y;
                page.y = top + 4.0;
                page.qr(number, WIDTH - MARGIN - 28.0, 28.0)?;
                page.y = end.min(top - 30.0);
            }
            None => page.line("Ticket number: not issued yet", 10.0, false),
        }
        page.down(4.0);
    }
    Ok(doc.save_to_bytes()?)
}

/// The invoice: number, booking, one row per line (credits taken off), and
/// the tax the tax-inclusive total contains.
pub fn invoice_pdf(view: &InvoiceView) -> Result<Vec<u8>, DocumentError> {
    let (doc, mut page) = document(&format!("Invoice {}", view.number))?;
    page.line(&format!("Invoice {}", view.number), 20.0, true);
    page.down(2.0);
    page.line(
        &format!("Booking reference (PNR): {}", view.pnr),
        11.0,
        false,
    );
    page.line(&format!("Issued: {}", view.issued_at), 11.0, false);
    page.down(6.0);
    page.text("Description", 10.0, MARGIN, true);
    page.text("Qty", 10.0, 120.0, true);
    page.text("Unit price", 10.0, 135.0, true);
    page.line_at_right("Amount", 10.0, true);
    page.down(2.0);
    for row in &view.lines {
        if page.y < MARGIN + 40.0 {
            break;
        }
        page.text(&row.description, 10.0, MARGIN, false);
        page.text(&row.quantity.to_string(), 10.0, 120.0, false);
        page.text(&row.unit_price, 10.0, 135.0, false);
        let amount = if row.credit {
            format!("-{}", row.amount)
        } else {
            row.amount.clone()
        };
        page.line_at_right(&amount, 10.0, false);
    }
    page.down(6.0);
    page.text("Subtotal (before tax)", 10.0, 120.0, false);
    page.line_at_right(&view.subtotal, 10.0, false);
    page.text(&format!("Tax ({})", view.tax_rate), 10.0, 120.0, false);
    page.line_at_right(&view.tax, 10.0, false);
    page.text("Total (tax included)", 11.0, 120.0, true);
    page.line_at_right(&view.total, 11.0, true);
    Ok(doc.save_to_bytes()?)
}

impl Page {
    /// `text` in the amount column, then the next line.
    fn line_at_right(&mut self, text: &str, size: f32, bold: bool) {
        self.text(text, size, 170.0, bold);
        self.down(size * 0.5);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flight() -> FlightView {
        FlightView {
            flight_number: "BA117".into(),
            airline: "British Airways".into(),
            origin: "LHR".into(),
            destination: "JFK".into(),
            departs_at: "2026-12-01 09:00 UTC".into(),
            arrives_at: "2026-12-01 17:00 UTC".into(),
        }
    }

    #[test]
    fn it_should_write_a_pdf_with_one_qr_code_per_ticket() {
        let view = TicketView {
            pnr: "K7Q2MZ".into(),
            status: "TICKETED".into(),
            segments: vec![flight()],
            passengers: vec![TicketPassenger {
                name: "Ada Lovelace".into(),
                kind: "adult".into(),
                seat: "12A".into(),
                cabin: "economy".into(),
                ticket_number: Some("1250000000001".into()),
                flight: None,
            }],
        };
        let bytes = ticket_pdf(&view).unwrap();
        assert!(bytes.starts_with(b"%PDF-"));
        assert!(bytes.len() > 1000);
    }

    #[test]
    fn it_should_print_what_the_fonts_cannot_as_question_marks() {
        assert_eq!(printable("Zoë 李"), "Zoë ?");
        assert_eq!(printable("a\nb"), "a?b");
    }
}
