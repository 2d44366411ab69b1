//! NumPy arrays in and out: audio as float32 samples, codes as a `[frames, channels]` array of
//! integers. Input is checked here for what only Python can get wrong (dtype, dimensions, NaN);
//! what the model or codec accepts is checked by them, with their messages.

use dia_burn::Error;
use dia_burn::audio::StreamResampler;
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// `samples` as a float32 NumPy array.
pub fn audio_to_py(py: Python<'_>, samples: Vec<f32>) -> Bound<'_, PyArray1<f32>> {
    PyArray1::from_vec(py, samples)
}

/// `codes` `[frames][channels]` as a uint32 NumPy array of that shape (`[0, channels]` when
/// there are none).
pub fn codes_to_py(
    py: Python<'_>,
    codes: Vec<Vec<u32>>,
    channels: usize,
) -> PyResult<Bound<'_, PyArray2<u32>>> {
    let frames = codes.len();
    let flat: Vec<u32> = codes.into_iter().flatten().collect();
    PyArray1::from_vec(py, flat).reshape([frames, channels])
}

/// Mono samples from any array-like of numbers: 1-D `[samples]`, or 2-D `[samples, channels]`
/// (as soundfile reads) with the channels averaged. Finite and not empty.
pub fn audio_from_py(audio: &Bound<'_, PyAny>) -> PyResult<Vec<f32>> {
    let array = asarray(audio, Some("float32"))?;
    let mono = match ndim(&array)? {
        1 => array,
        2 => array.call_method1("mean", (1,))?,
        n => {
            return Err(PyValueError::new_err(format!(
                "audio must be 1-D [samples] or 2-D [samples, channels], not {n}-D"
            )));
        }
    };
    let mono: PyReadonlyArray1<f32> = mono.extract()?;
    let samples: Vec<f32> = mono.as_array().iter().copied().collect();
    if samples.is_empty() {
        return Err(PyValueError::new_err("the audio holds no samples"));
    }
    if !samples.iter().all(|s| s.is_finite()) {
        return Err(PyValueError::new_err(
            "the audio holds NaN or infinite samples",
        ));
    }
    Ok(samples)
}

/// Codes `[frames][channels]` from a 2-D array-like of non-negative integers; `what` names the
/// argument in messages.
pub fn codes_from_py(codes: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<Vec<u32>>> {
    let array = asarray(codes, None)?;
    let dtype = array.getattr("dtype")?;
    let kind: String = dtype.getattr("kind")?.extract()?;
    if kind != "i" && kind != "u" {
        return Err(PyValueError::new_err(format!(
            "{what} must hold integers, not {}",
            dtype.str()?
        )));
    }
    let dims = ndim(&array)?;
    if dims != 2 {
        return Err(PyValueError::new_err(format!(
            "{what} must be 2-D [frames, channels], not {dims}-D"
        )));
    }
    let array: PyReadonlyArray2<i64> = array.call_method1("astype", ("int64",))?.extract()?;
    let view = array.as_array();
    let mut frames = Vec::with_capacity(view.nrows());
    for (f, row) in view.outer_iter().enumerate() {
        let frame = row.iter().enumerate().map(|(c, &code)| {
            u32::try_from(code).map_err(|_| {
                PyValueError::new_err(format!(
                    "{what}: frame {f} channel {c} has code {code}, expected 0 or more"
                ))
            })
        });
        frames.push(frame.collect::<PyResult<Vec<u32>>>()?);
    }
    Ok(frames)
}

/// Mono `samples` at `from` Hz resampled to `to` Hz (as they are when the rates agree).
pub fn resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>, Error> {
    if from == to {
        return Ok(samples.to_vec());
    }
    let mut resampler = StreamResampler::new(from, to)?;
    let mut out = resampler.push(samples)?;
    out.extend(resampler.finish()?);
    Ok(out)
}

/// `numpy.asarray(value, dtype)`.
fn asarray<'py>(value: &Bound<'py, PyAny>, dtype: Option<&str>) -> PyResult<Bound<'py, PyAny>> {
    let numpy = value.py().import("numpy")?;
    numpy.call_method1("asarray", (value, dtype))
}

fn ndim(array: &Bound<'_, PyAny>) -> PyResult<usize> {
    array.getattr("ndim")?.extract()
}
