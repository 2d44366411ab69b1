//! Checks a torch zip checkpoint's tensor records before any tensor is read. burn-store's reader
//! fills a record that is missing or short with zeros and reads every tensor as contiguous, so a
//! damaged or unusual file would load as silently wrong weights. Here `data.pkl` is walked with a
//! small pickle machine that only follows what a state dict holds, and every tensor is checked
//! against its storage and every storage against its record in the archive.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::rc::Rc;

/// The largest `data.pkl` read (a state dict's pickle is kilobytes to a few megabytes).
const MAX_PICKLE_BYTES: u64 = 256 << 20;

/// Checks every tensor of the torch zip checkpoint at `path`; the error says which tensor or
/// record is wrong and how.
pub(crate) fn check(path: &Path) -> Result<(), String> {
    let file = File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| format!("not a torch zip: {e}"))?;
    // Every entry's name and size, read once from the central directory.
    let entries: Vec<(String, u64)> = (0..archive.len())
        .filter_map(|i| {
            archive
                .by_index_raw(i)
                .ok()
                .map(|e| (e.name().to_string(), e.size()))
        })
        .collect();
    let pickle_name = entries
        .iter()
        .map(|(name, _)| name)
        .find(|name| *name == "data.pkl" || name.ends_with("/data.pkl"))
        .cloned()
        .ok_or("no data.pkl in the archive")?;
    let prefix = &pickle_name[..pickle_name.len() - "data.pkl".len()];
    let records: HashMap<String, u64> = entries
        .iter()
        .filter_map(|(name, size)| {
            let key = name.strip_prefix(prefix)?.strip_prefix("data/")?;
            Some((key.to_string(), *size))
        })
        .collect();
    let mut pickle = Vec::new();
    archive
        .by_name(&pickle_name)
        .map_err(|e| format!("{pickle_name}: {e}"))?
        .take(MAX_PICKLE_BYTES)
        .read_to_end(&mut pickle)
        .map_err(|e| format!("{pickle_name}: {e}"))?;
    Machine::new(&pickle, &records).run()
}

/// A tuple's items and how deep tuples nest in it (1 for a tuple of non-tuples).
#[derive(Debug)]
struct Tuple {
    items: Vec<Value>,
    depth: u8,
}

/// `items` as a tuple value, or an opaque one past [`MAX_DEPTH`].
fn tuple(items: Vec<Value>) -> Value {
    let inner = items
        .iter()
        .map(|v| match v {
            Value::Tuple(t) => t.depth,
            _ => 0,
        })
        .max()
        .unwrap_or(0);
    match inner < MAX_DEPTH {
        true => Value::Tuple(Rc::new(Tuple {
            items,
            depth: inner + 1,
        })),
        false => Value::Other,
    }
}

/// A short description of a value for messages (never its contents, which may be huge).
fn describe(value: &Value) -> String {
    match value {
        Value::Int(i) => format!("the integer {i}"),
        Value::Str(_) => "a string".into(),
        Value::Tuple(t) => format!("a tuple of {} items", t.items.len()),
        Value::Global(module, name) => format!("{module}.{name}"),
        Value::Storage(_) => "a storage".into(),
        Value::Tensor => "a tensor".into(),
        Value::Mark | Value::Other => "another value".into(),
    }
}

/// A storage the pickle refers to: its record's name, element size and element count.
#[derive(Debug)]
struct Storage {
    key: String,
    element: u64,
    elements: u64,
}

/// Tuples nested deeper than this become opaque: a tensor's arguments nest three deep, and a
/// crafted pickle must not build values whose drop or printing recurses without bound.
const MAX_DEPTH: u8 = 8;

/// What the machine keeps of a pickled value: enough to rebuild a tensor's arguments.
#[derive(Debug, Clone)]
enum Value {
    Mark,
    Int(i64),
    Str(Rc<str>),
    Tuple(Rc<Tuple>),
    Global(Rc<str>, Rc<str>),
    Storage(Rc<Storage>),
    Tensor,
    /// Anything else (dicts, lists, floats, objects): never looked into.
    Other,
}

/// A pickle machine over `data.pkl` that checks each tensor it rebuilds.
struct Machine<'a> {
    bytes: &'a [u8],
    at: usize,
    stack: Vec<Value>,
    memo: HashMap<u32, Value>,
    records: &'a HashMap<String, u64>,
}

impl<'a> Machine<'a> {
    fn new(bytes: &'a [u8], records: &'a HashMap<String, u64>) -> Self {
        Self {
            bytes,
            at: 0,
            stack: Vec::new(),
            memo: HashMap::new(),
            records,
        }
    }

    /// Runs to the STOP opcode.
    fn run(mut self) -> Result<(), String> {
        loop {
            let op = self.take(1)?[0];
            if op == b'.' {
                return Ok(());
            }
            self.op(op)
                .map_err(|e| format!("data.pkl at byte {}: {e}", self.at - 1))?;
        }
    }

    /// Executes one opcode (all a torch state dict uses; others are refused).
    fn op(&mut self, op: u8) -> Result<(), String> {
        if let Some(value) = self.literal(op)? {
            self.stack.push(value);
            return Ok(());
        }
        match op {
            // PROTO, FRAME: their operands mean nothing here.
            0x80 | 0x95 => {
                self.take(if op == 0x80 { 1 } else { 8 })?;
            }
            b't' => self.collapse(tuple)?, // TUPLE
            0x85..=0x87 => {
                // TUPLE1..3
                let items = self.pop_n(usize::from(op - 0x84))?;
                self.stack.push(tuple(items));
            }
            b'd' | b'l' | 0x91 => self.collapse(|_| Value::Other)?, // DICT, LIST, FROZENSET
            0x93 => {
                // STACK_GLOBAL
                let [module, name] = self.pop_n(2)?.try_into().map_err(|_| "stack")?;
                let (Value::Str(module), Value::Str(name)) = (module, name) else {
                    return Err("STACK_GLOBAL of non-strings".into());
                };
                self.stack.push(Value::Global(module, name));
            }
            b'q' | b'r' | 0x94 | b'h' | b'j' => self.memo_op(op)?,
            b'R' => {
                let [callable, args] = self.pop_n(2)?.try_into().map_err(|_| "stack")?;
                let value = self.reduce(&callable, &args)?;
                self.stack.push(value);
            }
            0x81 => {
                // NEWOBJ
                self.pop_n(2)?;
                self.stack.push(Value::Other);
            }
            b'b' | b'0' | b'a' => drop(self.pop_n(1)?), // BUILD (the object stays), POP, APPEND
            b's' => drop(self.pop_n(2)?),               // SETITEM
            b'u' | b'e' | 0x90 | b'1' => drop(self.pop_mark()?), // SETITEMS, APPENDS, ADDITEMS, POP_MARK
            b'2' => {
                let top = self.stack.last().cloned().ok_or("DUP on an empty stack")?;
                self.stack.push(top);
            }
            b'Q' => {
                // BINPERSID
                let id = self.pop_n(1)?.remove(0);
                let storage = self.storage(&id)?;
                self.stack.push(Value::Storage(Rc::new(storage)));
            }
            _ => return Err(format!("unsupported pickle opcode 0x{op:02x}")),
        }
        Ok(())
    }

    /// The value a literal-pushing opcode reads (numbers, strings, globals, empty containers,
    /// marks); `None` for any other opcode.
    fn literal(&mut self, op: u8) -> Result<Option<Value>, String> {
        let value = match op {
            b'J' => Value::Int(i32::from_le_bytes(self.array()?).into()), // BININT
            b'K' => Value::Int(self.take(1)?[0].into()),                  // BININT1
            b'M' => Value::Int(u16::from_le_bytes(self.array()?).into()), // BININT2
            0x8a => {
                // LONG1
                let n = usize::from(self.take(1)?[0]);
                long(self.take(n)?)
            }
            b'X' | b'T' => self.text(4)?, // BINUNICODE, BINSTRING
            0x8c | b'U' => self.text(1)?, // SHORT_BINUNICODE, SHORT_BINSTRING
            0x8d => self.text(8)?,        // BINUNICODE8
            b'C' | b'B' | 0x8e => {
                // SHORT_BINBYTES, BINBYTES, BINBYTES8
                self.sized(match op {
                    b'C' => 1,
                    b'B' => 4,
                    _ => 8,
                })?;
                Value::Other
            }
            b'G' => {
                // BINFLOAT
                self.take(8)?;
                Value::Other
            }
            b'c' => Value::Global(self.line()?, self.line()?), // GLOBAL
            b'(' => Value::Mark,
            b')' => tuple(Vec::new()),
            // NONE, NEWTRUE, NEWFALSE, EMPTY_DICT, EMPTY_LIST, EMPTY_SET
            b'N' | 0x88 | 0x89 | b'}' | b']' | 0x8f => Value::Other,
            _ => return Ok(None),
        };
        Ok(Some(value))
    }

    /// BINPUT, LONG_BINPUT, MEMOIZE (store the top of the stack), BINGET, LONG_BINGET (push a
    /// stored value).
    fn memo_op(&mut self, op: u8) -> Result<(), String> {
        let index = match op {
            b'q' | b'h' => u32::from(self.take(1)?[0]),
            b'r' | b'j' => u32::from_le_bytes(self.array()?),
            _ => u32::try_from(self.memo.len()).map_err(|_| "memo too large")?,
        };
        if matches!(op, b'h' | b'j') {
            let value = self.memo.get(&index).cloned();
            self.stack
                .push(value.ok_or_else(|| format!("memo {index} was never put"))?);
        } else {
            let top = self
                .stack
                .last()
                .cloned()
                .ok_or("memo put on an empty stack")?;
            self.memo.insert(index, top);
        }
        Ok(())
    }

    /// The value `callable(*args)` builds: a checked tensor for torch's tensor rebuilders, the
    /// tensor inside for the wrappers around one (parameters, tensor subclasses), else opaque.
    fn reduce(&self, callable: &Value, args: &Value) -> Result<Value, String> {
        let Value::Tuple(args) = args else {
            return Ok(Value::Other);
        };
        let args = &args.items[..];
        if is_tensor_rebuilder(callable) {
            self.check_tensor(args)?;
            return Ok(Value::Tensor);
        }
        // `_rebuild_from_type_v2(rebuilder, type, rebuilder_args, state)`: a tensor subclass.
        if let [rebuilder, _, Value::Tuple(inner), ..] = args
            && is_tensor_rebuilder(rebuilder)
        {
            self.check_tensor(&inner.items)?;
            return Ok(Value::Tensor);
        }
        match args.iter().any(|a| matches!(a, Value::Tensor)) {
            true => Ok(Value::Tensor),
            false => Ok(Value::Other),
        }
    }

    /// A tensor `(storage, offset, size, stride, ...)`: its storage's record is whole, and
    /// its elements are contiguous and inside the storage.
    fn check_tensor(&self, args: &[Value]) -> Result<(), String> {
        let name = self.nearest_key();
        let tensor = |reason: String| format!("tensor `{name}`: {reason}");
        let (Some(Value::Storage(storage)), Some(Value::Int(offset)), Some(size), Some(stride)) =
            (args.first(), args.get(1), args.get(2), args.get(3))
        else {
            return Err(tensor("not (storage, offset, size, stride)".into()));
        };
        let (size, stride) = (ints(size).map_err(tensor)?, ints(stride).map_err(tensor)?);
        if size.len() > 16 {
            return Err(tensor(format!("{} dimensions", size.len())));
        }
        if size.len() != stride.len() {
            return Err(tensor(format!(
                "{} sizes, {} strides",
                size.len(),
                stride.len()
            )));
        }
        self.check_record(storage).map_err(tensor)?;
        let contiguous = size
            .iter()
            .zip(&stride)
            .rev()
            .try_fold(1u64, |want, (&n, &s)| {
                (n <= 1 || s == want).then(|| want.saturating_mul(n.max(1)))
            });
        if contiguous.is_none() {
            return Err(tensor(format!(
                "strides {stride:?} for shape {size:?} are not contiguous (not supported)"
            )));
        }
        let offset = u64::try_from(*offset).map_err(|_| tensor(format!("offset {offset}")))?;
        let needed = match size.contains(&0) {
            true => 0,
            false => size
                .iter()
                .fold(1u64, |n, &d| n.saturating_mul(d))
                .saturating_add(offset),
        };
        if needed > storage.elements {
            return Err(tensor(format!(
                "shape {size:?} at offset {offset} needs {needed} elements, its storage `{}` \
                 holds {}",
                storage.key, storage.elements
            )));
        }
        Ok(())
    }

    /// The storage's record exists and holds exactly its elements.
    fn check_record(&self, storage: &Storage) -> Result<(), String> {
        let key = &storage.key;
        let bytes = self
            .records
            .get(key)
            .ok_or_else(|| format!("its record data/{key} is missing from the archive"))?;
        let needed = storage.elements.saturating_mul(storage.element);
        if *bytes != needed {
            return Err(format!(
                "its record data/{key} holds {bytes} bytes, its storage needs {needed}"
            ));
        }
        Ok(())
    }

    /// The storage a persistent id `('storage', type, key, location, elements)` names.
    fn storage(&self, id: &Value) -> Result<Storage, String> {
        let Value::Tuple(tuple) = id else {
            return Err(format!("a persistent id that is {}", describe(id)));
        };
        match &tuple.items[..] {
            [
                Value::Str(kind),
                Value::Global(_, ty),
                Value::Str(key),
                _,
                Value::Int(n),
            ] if &**kind == "storage" && *n >= 0 => Ok(Storage {
                key: key.to_string(),
                element: element_bytes(ty)?,
                elements: *n as u64,
            }),
            _ => Err(format!("unsupported persistent id ({})", describe(id))),
        }
    }

    /// The string under the tensor being rebuilt: its state-dict key, for messages.
    fn nearest_key(&self) -> String {
        self.stack
            .iter()
            .rev()
            .find_map(|v| match v {
                Value::Str(s) => Some(s.to_string()),
                _ => None,
            })
            .unwrap_or_else(|| "?".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let bytes: &'a [u8] = self.bytes;
        let end = self.at.checked_add(n).filter(|&e| e <= bytes.len());
        let end = end.ok_or("the pickle ends early")?;
        let slice = &bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }

    /// A length of `width` bytes (little-endian), then that many bytes.
    fn sized(&mut self, width: usize) -> Result<&'a [u8], String> {
        let mut len = [0u8; 8];
        len[..width].copy_from_slice(self.take(width)?);
        let len = usize::try_from(u64::from_le_bytes(len)).map_err(|_| "length too large")?;
        self.take(len)
    }

    /// A string of a `width`-byte length.
    fn text(&mut self, width: usize) -> Result<Value, String> {
        Ok(Value::Str(
            String::from_utf8_lossy(self.sized(width)?).into(),
        ))
    }

    /// A newline-terminated line (GLOBAL's operands).
    fn line(&mut self) -> Result<Rc<str>, String> {
        let rest = &self.bytes[self.at..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("the pickle ends early")?;
        let line = String::from_utf8_lossy(&rest[..end]).into();
        self.at += end + 1;
        Ok(line)
    }

    fn pop_n(&mut self, n: usize) -> Result<Vec<Value>, String> {
        let at = self.stack.len().checked_sub(n).ok_or("stack underflow")?;
        Ok(self.stack.split_off(at))
    }

    /// The values above the topmost mark, the mark removed.
    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let mark = self.stack.iter().rposition(|v| matches!(v, Value::Mark));
        let mark = mark.ok_or("no mark on the stack")?;
        let items = self.stack.split_off(mark + 1);
        self.stack.pop();
        Ok(items)
    }

    /// Replaces the values above the topmost mark with `build` of them.
    fn collapse(&mut self, build: impl FnOnce(Vec<Value>) -> Value) -> Result<(), String> {
        let items = self.pop_mark()?;
        self.stack.push(build(items));
        Ok(())
    }
}

/// A LONG1 integer (little-endian two's complement); opaque past 64 bits.
fn long(bytes: &[u8]) -> Value {
    if bytes.len() > 8 {
        return Value::Other;
    }
    let fill = if bytes.last().is_some_and(|&b| b & 0x80 != 0) {
        0xff
    } else {
        0
    };
    let mut wide = [fill; 8];
    wide[..bytes.len()].copy_from_slice(bytes);
    Value::Int(i64::from_le_bytes(wide))
}

/// A tuple of non-negative integers (a shape or strides).
fn ints(value: &Value) -> Result<Vec<u64>, String> {
    let Value::Tuple(tuple) = value else {
        return Err(format!(
            "expected a tuple of integers, found {}",
            describe(value)
        ));
    };
    tuple
        .items
        .iter()
        .map(|v| match v {
            Value::Int(i) if *i >= 0 => Ok(*i as u64),
            _ => Err(format!(
                "expected non-negative integers, found {}",
                describe(v)
            )),
        })
        .collect()
}

/// Whether `callable` is torch's function that rebuilds a tensor from its storage.
fn is_tensor_rebuilder(callable: &Value) -> bool {
    matches!(callable, Value::Global(module, name)
        if &**module == "torch._utils"
            && matches!(&**name, "_rebuild_tensor_v2" | "_rebuild_tensor"))
}

/// Bytes per element of a torch storage type.
fn element_bytes(storage_type: &str) -> Result<u64, String> {
    Ok(match storage_type {
        "DoubleStorage" | "LongStorage" | "ComplexFloatStorage" => 8,
        "FloatStorage" | "IntStorage" => 4,
        "HalfStorage" | "BFloat16Storage" | "ShortStorage" => 2,
        "CharStorage" | "ByteStorage" | "BoolStorage" => 1,
        "ComplexDoubleStorage" => 16,
        other => return Err(format!("unsupported storage type {other}")),
    })
}
