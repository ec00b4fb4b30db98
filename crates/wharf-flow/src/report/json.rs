//! `--json`: one event per line, for machines.

use std::io::{self, Write};
use std::sync::Mutex;

use crate::event::{Event, Reporter};

/// Writes each event as one JSON object on its own line, flushed at once so that a reader
/// sees a step start while it runs.
///
/// When the reader goes away (`BrokenPipe`, as with `| head`), it stops writing, quietly:
/// the run itself is not the reader's business.
pub struct JsonLines<W: Write + Send> {
    out: Mutex<Sink<W>>,
}

struct Sink<W> {
    writer: W,
    closed: bool,
}

impl<W: Write + Send> JsonLines<W> {
    pub fn new(writer: W) -> JsonLines<W> {
        JsonLines {
            out: Mutex::new(Sink {
                writer,
                closed: false,
            }),
        }
    }

    /// The writer back, for tests that read what was written.
    pub fn into_inner(self) -> W {
        self.out
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .writer
    }
}

impl<W: Write + Send> Reporter for JsonLines<W> {
    fn event(&self, event: &Event) {
        let mut sink = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if sink.closed {
            return;
        }
        let mut line = match serde_json::to_vec(event) {
            Ok(line) => line,
            Err(e) => {
                tracing::warn!("serializing a run event as json: {e}");
                return;
            }
        };
        line.push(b'\n');
        let written = sink
            .writer
            .write_all(&line)
            .and_then(|()| sink.writer.flush());
        match written {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => sink.closed = true,
            Err(e) => {
                tracing::warn!("writing json events: {e} (the rest of the events are dropped)");
                sink.closed = true;
            }
        }
    }
}
