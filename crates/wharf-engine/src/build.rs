//! Dockerfile builds through the engine's classic builder (`POST /build`), with the output
//! streamed line by line and a failure that names the step it happened in.
//!
//! The classic builder is what Debian's engine (20.10) runs without BuildKit; its output is
//! one `stream` text per message, with `Step N/M : INSTRUCTION` before each step. BuildKit
//! would need bollard's `buildkit` feature and a gRPC session (see docs/ARCHITECTURE.md).

use std::collections::{BTreeMap, HashMap, VecDeque};

use bollard::query_parameters::BuildImageOptionsBuilder;
use bytes::Bytes;
use futures_util::StreamExt;
use wharf_oci::Reference;

use crate::{Engine, Error, Result, engine_name};

/// How many lines of a failed step's output the error repeats.
const LAST_LINES: usize = 15;

/// What to build.
#[derive(Clone, Debug, Default)]
pub struct BuildRequest {
    /// The build context as a tar archive ([`crate::context_tar`]).
    pub context: Vec<u8>,
    /// The Dockerfile's path inside the context.
    pub dockerfile: String,
    /// `ARG` values.
    pub args: BTreeMap<String, String>,
    /// The stage to build (`--target`); `None` builds the last one.
    pub target: Option<String>,
    /// Labels added to the image (the OCI labels wharf puts on every image).
    pub labels: BTreeMap<String, String>,
    /// Build every step again instead of using the engine's cache (`--no-cache`).
    pub no_cache: bool,
}

impl Engine {
    /// Builds `request` (the context is handed to the engine, not copied) and tags the
    /// result `name`; every line the builder prints goes to
    /// `on_line` as it comes. Returns the image ID.
    pub fn build(
        &self,
        request: BuildRequest,
        name: &Reference,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<String> {
        let tag = engine_name(name)?;
        let args: HashMap<String, String> = request.args.into_iter().collect();
        let labels: HashMap<String, String> = request.labels.into_iter().collect();
        let mut options = BuildImageOptionsBuilder::default()
            .dockerfile(&request.dockerfile)
            .t(&tag)
            .rm(true)
            .forcerm(true)
            .nocache(request.no_cache)
            .buildargs(&args)
            .labels(&labels);
        if let Some(target) = &request.target {
            options = options.target(target);
        }
        let body = bollard::body_full(Bytes::from(request.context));
        let mut log = BuildLog::default();
        self.runtime.block_on(async {
            let mut messages = self.docker.build_image(options.build(), None, Some(body));
            while let Some(message) = messages.next().await {
                let message = message.map_err(|e| match e {
                    bollard::errors::Error::DockerStreamError { error } => log.failed(&error),
                    other => Error::Engine {
                        action: "build",
                        name: tag.clone(),
                        why: other.to_string(),
                    },
                })?;
                if let Some(text) = &message.stream {
                    log.push(text, on_line);
                }
                if let Some(detail) = message.error_detail.and_then(|d| d.message) {
                    log.flush(on_line);
                    return Err(log.failed(&detail));
                }
            }
            log.flush(on_line);
            Ok(())
        })?;
        self.image_id(name)?
            .ok_or_else(|| Error::NotFound { name: tag.clone() })
    }
}

/// The builder's output, split into lines, with the step each line belongs to.
#[derive(Default)]
struct BuildLog {
    /// A line not yet ended (messages can split lines).
    partial: String,
    /// `N/M (INSTRUCTION)` of the step running.
    step: Option<String>,
    /// Its last lines of output.
    output: VecDeque<String>,
}

impl BuildLog {
    fn push(&mut self, text: &str, on_line: &mut dyn FnMut(&str)) {
        self.partial.push_str(text);
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            self.line(line.trim_end_matches(['\n', '\r']), on_line);
        }
    }

    fn flush(&mut self, on_line: &mut dyn FnMut(&str)) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(&line, on_line);
        }
    }

    fn line(&mut self, line: &str, on_line: &mut dyn FnMut(&str)) {
        on_line(line);
        if let Some(step) = line.strip_prefix("Step ") {
            // `2/3 : RUN make` reads better as `2/3 (RUN make)`.
            self.step = Some(match step.split_once(" : ") {
                Some((number, instruction)) => format!("{number} ({instruction})"),
                None => step.to_string(),
            });
            self.output.clear();
        } else if !is_builder_noise(line) {
            if self.output.len() == LAST_LINES {
                self.output.pop_front();
            }
            self.output.push_back(line.to_string());
        }
    }

    fn failed(&self, message: &str) -> Error {
        Error::BuildFailed {
            step: self
                .step
                .clone()
                .unwrap_or_else(|| "before the first step".into()),
            message: message.trim().to_string(),
            output: self.output.iter().cloned().collect(),
        }
    }
}

/// The builder's own bookkeeping between a step's lines of output.
fn is_builder_noise(line: &str) -> bool {
    line.trim().is_empty()
        || line.starts_with(" ---> ")
        || line.starts_with("Removing intermediate container ")
}

/// `Error::BuildFailed`'s text: the step, the builder's message, the step's last lines.
pub(crate) fn describe_failure(step: &str, message: &str, output: &[String]) -> String {
    let mut text = format!("the Docker build failed in step {step}: {message}");
    if !output.is_empty() {
        text.push_str("\nlast lines of the step's output:");
        for line in output {
            text.push_str("\n  ");
            text.push_str(line);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed(chunks: &[&str]) -> (Vec<String>, BuildLog) {
        let mut seen = Vec::new();
        let mut log = BuildLog::default();
        for chunk in chunks {
            log.push(chunk, &mut |line| seen.push(line.to_string()));
        }
        log.flush(&mut |line| seen.push(line.to_string()));
        (seen, log)
    }

    #[test]
    fn lines_split_across_messages_come_out_whole_and_the_failing_step_is_named() {
        let (seen, log) = fed(&[
            "Step 1/3 : FROM base\n ---> 1234\n",
            "Step 2/3 : RUN echo one && false\n",
            " ---> Running in abcd\n",
            "o",
            "ne\nlast wor",
            "ds\nRemoving intermediate container abcd\n",
        ]);
        assert_eq!(
            seen,
            [
                "Step 1/3 : FROM base",
                " ---> 1234",
                "Step 2/3 : RUN echo one && false",
                " ---> Running in abcd",
                "one",
                "last words",
                "Removing intermediate container abcd"
            ]
        );
        let error = log
            .failed("The command '/bin/sh -c echo one && false' returned a non-zero code: 1\n")
            .to_string();
        assert_eq!(
            error,
            "the Docker build failed in step 2/3 (RUN echo one && false): The command '/bin/sh -c echo one && false' returned a non-zero code: 1\nlast lines of the step's output:\n  one\n  last words"
        );
    }

    #[test]
    fn only_the_last_lines_of_a_long_step_are_kept() {
        let output: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let (_, log) = fed(&["Step 1/1 : RUN noisy\n", &output]);
        assert_eq!(log.output.len(), LAST_LINES);
        assert_eq!(log.output.back().unwrap(), "line 99");
    }
}
