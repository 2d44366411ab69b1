//! The body of `POST /v1/audio/speech`: OpenAI's fields, Dia's sampling extensions, each
//! checked with an error naming the field. Unknown fields are ignored, so newer clients work.

use dia_burn::SamplingOverrides;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::format::AudioFormat;

/// The longest `input` accepted, in characters (OpenAI's limit).
pub const MAX_INPUT_CHARS: usize = 4096;

/// A speech request, checked.
#[derive(Debug, Clone)]
pub struct SpeechRequest {
    /// The script; `[S1] ` is prepended when it names no speaker.
    pub input: String,
    /// The voice named (by string or `{"id": …}`); `None`: none given.
    pub voice: Option<String>,
    pub format: AudioFormat,
    /// `stream_format: "sse"`: server-sent events with base64 audio.
    pub sse: bool,
    /// Dia's sampling extensions; those left out take the server's defaults.
    pub sampling: SamplingOverrides,
}

impl SpeechRequest {
    /// Parses and checks a request body.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                format!("the request body is not valid JSON: {e}"),
            )
        })?;
        let Value::Object(fields) = value else {
            return Err(ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "the request body must be a JSON object",
            ));
        };
        // Any model name is accepted (one model is served), but OpenAI requires the field.
        required::<String>(&fields, "model")?;
        let input = required::<String>(&fields, "input")?;
        let input = check_input(input)?;
        let voice = voice(&fields)?;
        let format = match field::<String>(&fields, "response_format")? {
            Some(name) => name
                .parse()
                .map_err(|m| ApiError::invalid("response_format", m))?,
            None => AudioFormat::Mp3,
        };
        check_speed(field::<f64>(&fields, "speed")?)?;
        let sse = match field::<String>(&fields, "stream_format")?.as_deref() {
            None | Some("audio") => false,
            Some("sse") => true,
            Some(other) => {
                let message = format!("stream_format {other:?} is not one of \"audio\", \"sse\"");
                return Err(ApiError::invalid("stream_format", message).code("unsupported_value"));
            }
        };
        // Accepted for compatibility; Dia takes no instructions.
        field::<String>(&fields, "instructions")?;
        let sampling = SamplingOverrides {
            seed: field(&fields, "seed")?,
            temperature: field(&fields, "temperature")?,
            top_p: field(&fields, "top_p")?,
            cfg_scale: field(&fields, "cfg_scale")?,
            cfg_filter_top_k: field(&fields, "cfg_filter_top_k")?,
            max_tokens: field(&fields, "max_tokens")?,
        };
        Ok(Self {
            input,
            voice,
            format,
            sse,
            sampling,
        })
    }
}

/// Field `name` as a `T`; absent or `null` is `None`, another type a 400 naming the field.
fn field<T: DeserializeOwned>(
    fields: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<T>, ApiError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => serde_json::from_value(value.clone())
            .map(Some)
            .map_err(|e| ApiError::invalid(name, format!("{name}: {e}"))),
    }
}

/// Field `name`, which the request must have.
fn required<T: DeserializeOwned>(
    fields: &Map<String, Value>,
    name: &'static str,
) -> Result<T, ApiError> {
    field(fields, name)?
        .ok_or_else(|| ApiError::invalid(name, format!("{name} is required")).code("missing"))
}

/// The voice: a name, or `{"id": name}`.
fn voice(fields: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    match fields.get("voice") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(name)) => Ok(Some(name.clone())),
        Some(Value::Object(v)) => match v.get("id") {
            Some(Value::String(id)) => Ok(Some(id.clone())),
            _ => Err(ApiError::invalid(
                "voice",
                "voice must be a name or an object {\"id\": name}",
            )),
        },
        Some(_) => Err(ApiError::invalid(
            "voice",
            "voice must be a name or an object {\"id\": name}",
        )),
    }
}

/// A non-empty script of at most [`MAX_INPUT_CHARS`], given a speaker tag if it has none.
fn check_input(input: String) -> Result<String, ApiError> {
    if input.trim().is_empty() {
        return Err(ApiError::invalid(
            "input",
            "input is empty: give the text to speak",
        ));
    }
    let chars = input.chars().count();
    if chars > MAX_INPUT_CHARS {
        return Err(ApiError::invalid(
            "input",
            format!("input is {chars} characters long; the limit is {MAX_INPUT_CHARS}"),
        )
        .code("string_above_max_length"));
    }
    if input.trim_start().starts_with("[S") {
        Ok(input)
    } else {
        Ok(format!("[S1] {}", input.trim_start()))
    }
}

/// `speed`: OpenAI's range is 0.25–4.0; Dia speaks at its own pace, so only 1.0 is served
/// (stretching the audio would change its pitch or add artefacts).
fn check_speed(speed: Option<f64>) -> Result<(), ApiError> {
    match speed {
        None => Ok(()),
        Some(s) if !(0.25..=4.0).contains(&s) => Err(ApiError::invalid(
            "speed",
            format!("speed {s} is outside 0.25–4.0"),
        )),
        Some(s) if s != 1.0 => Err(ApiError::invalid(
            "speed",
            format!("speed {s} is not supported: Dia speaks at its own pace; send 1.0 or omit it"),
        )
        .code("unsupported_value")),
        Some(_) => Ok(()),
    }
}
