//! Opus in an Ogg container (RFC 7845), as OpenAI's `opus` is: the codec's audio resampled to
//! 48 kHz, 20 ms packets from `opus-pure` (a pure-Rust port of libopus: no C or cmake to build),
//! one Ogg page per push.

use dia_burn::audio::StreamResampler;
use ogg::writing::{PacketWriteEndInfo, PacketWriter};
use opus_pure::{Application, MAX_PACKET_BYTES, OpusEncoder};

use super::{AudioEncoder, EncodeError};

/// Opus runs at 48 kHz here; a packet is 20 ms.
const OPUS_RATE: u32 = 48_000;
const PACKET: usize = 960;
/// The bit rate asked of the encoder, in bit/s.
const BITRATE: i32 = 64_000;
/// The Ogg stream's serial number (one stream per response).
const SERIAL: u32 = 0x6469_6121;

/// Streaming Ogg Opus.
pub struct OggOpusEncoder {
    resampler: Option<StreamResampler>,
    opus: OpusEncoder,
    ogg: PacketWriter<'static, Vec<u8>>,
    /// Encoder delay at 48 kHz (OpusHead's pre-skip).
    pre_skip: usize,
    /// 48 kHz samples not yet a whole packet.
    pending: Vec<f32>,
    /// 48 kHz samples of audio taken in all.
    audio: u64,
    /// Samples of the packets written (the next granule position, pre-skip included).
    written: u64,
    /// The newest packet, held back so that the stream's last packet can be marked as such.
    held: Option<Vec<u8>>,
}

fn error(e: impl std::fmt::Display) -> EncodeError {
    EncodeError::new("opus", e)
}

impl OggOpusEncoder {
    pub fn new(rate: u32) -> Result<Self, EncodeError> {
        let resampler = match rate {
            OPUS_RATE => None,
            _ => Some(StreamResampler::new(rate, OPUS_RATE).map_err(error)?),
        };
        let mut opus = OpusEncoder::new(OPUS_RATE as i32, 1, Application::Audio).map_err(error)?;
        opus.bitrate_bps = BITRATE;
        let pre_skip = opus.lookahead();
        let mut ogg = PacketWriter::new(Vec::new());
        let end_page = PacketWriteEndInfo::EndPage;
        let head = head(rate, u16::try_from(pre_skip).map_err(error)?);
        ogg.write_packet(head, SERIAL, end_page, 0).map_err(error)?;
        ogg.write_packet(tags(), SERIAL, end_page, 0)
            .map_err(error)?;
        Ok(Self {
            resampler,
            opus,
            ogg,
            pre_skip,
            pending: Vec::with_capacity(PACKET),
            audio: 0,
            written: 0,
            held: None,
        })
    }

    /// Encodes the whole packets in the pending samples and `audio` (48 kHz).
    fn packets(&mut self, audio: &[f32]) -> Result<Vec<Vec<u8>>, EncodeError> {
        let mut packets = Vec::new();
        for &s in audio {
            self.pending.push(s);
            if self.pending.len() == PACKET {
                packets.push(self.packet()?);
            }
        }
        Ok(packets)
    }

    /// Encodes the pending samples, zero-padded to a packet.
    fn packet(&mut self) -> Result<Vec<u8>, EncodeError> {
        self.pending.resize(PACKET, 0.0);
        let mut packet = vec![0; MAX_PACKET_BYTES];
        let len = self
            .opus
            .encode(&self.pending, PACKET, &mut packet)
            .map_err(error)?;
        packet.truncate(len);
        self.pending.clear();
        Ok(packet)
    }

    /// Writes the held packet and `packets` but the newest (held back, unless `last`); the
    /// last one written ends a page (the stream, when `last`) so the bytes can go out now.
    fn write(&mut self, packets: Vec<Vec<u8>>, last: bool) -> Result<Vec<u8>, EncodeError> {
        let mut queue: Vec<Vec<u8>> = self.held.take().into_iter().chain(packets).collect();
        if !last {
            self.held = queue.pop();
        }
        let count = queue.len();
        for (i, packet) in queue.into_iter().enumerate() {
            self.written += PACKET as u64;
            let (end, granule) = match (i + 1 == count, last) {
                // The final granule position trims the padding: the decoder drops pre-skip.
                (true, true) => (
                    PacketWriteEndInfo::EndStream,
                    self.pre_skip as u64 + self.audio,
                ),
                (true, false) => (PacketWriteEndInfo::EndPage, self.written),
                (false, _) => (PacketWriteEndInfo::NormalPacket, self.written),
            };
            self.ogg
                .write_packet(packet, SERIAL, end, granule)
                .map_err(error)?;
        }
        Ok(std::mem::take(self.ogg.inner_mut()))
    }
}

impl AudioEncoder for OggOpusEncoder {
    fn push(&mut self, samples: &[f32]) -> Result<Vec<u8>, EncodeError> {
        let audio = match &mut self.resampler {
            Some(r) => r.push(samples).map_err(error)?,
            None => samples.to_vec(),
        };
        self.audio += audio.len() as u64;
        let packets = self.packets(&audio)?;
        self.write(packets, false)
    }

    fn finish(mut self: Box<Self>) -> Result<Vec<u8>, EncodeError> {
        let mut audio = match self.resampler.take() {
            Some(r) => r.finish().map_err(error)?,
            None => Vec::new(),
        };
        self.audio += audio.len() as u64;
        // The encoder's delay: pre-skip more samples make every real sample decodable.
        audio.resize(audio.len() + self.pre_skip, 0.0);
        let mut packets = self.packets(&audio)?;
        if !self.pending.is_empty() || (packets.is_empty() && self.held.is_none()) {
            packets.push(self.packet()?);
        }
        self.write(packets, true)
    }
}

/// The identification header: version 1, mono, `pre_skip`, the input rate, no gain, family 0.
fn head(input_rate: u32, pre_skip: u16) -> Vec<u8> {
    let mut h = b"OpusHead".to_vec();
    h.push(1);
    h.push(1);
    h.extend_from_slice(&pre_skip.to_le_bytes());
    h.extend_from_slice(&input_rate.to_le_bytes());
    h.extend_from_slice(&0i16.to_le_bytes());
    h.push(0);
    h
}

/// The comment header: the vendor string, no comments.
fn tags() -> Vec<u8> {
    let vendor = concat!("dia-server ", env!("CARGO_PKG_VERSION"));
    let mut t = b"OpusTags".to_vec();
    t.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    t.extend_from_slice(vendor.as_bytes());
    t.extend_from_slice(&0u32.to_le_bytes());
    t
}
