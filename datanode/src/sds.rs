//! `Sds`: the compact byte string used for keys and stored values.
//!
//! Strings of up to 22 bytes live inline (no allocation), longer ones in one boxed slice, so
//! either form takes 24 bytes. Hashing and ordering are those of the byte slice, so a map keyed by
//! `Sds` is queried with a plain `&[u8]`.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use bytes::Bytes;

const INLINE: usize = 22;

/// A byte string, inline up to 22 bytes.
#[derive(Clone)]
pub enum Sds {
    /// Short strings, stored in place.
    Inline {
        /// Used bytes of `buf`.
        len: u8,
        /// The bytes.
        buf: [u8; INLINE],
    },
    /// Longer strings.
    Heap(Box<[u8]>),
}

impl Sds {
    /// Copies `data`.
    pub fn new(data: &[u8]) -> Sds {
        if data.len() <= INLINE {
            let mut buf = [0u8; INLINE];
            buf[..data.len()].copy_from_slice(data);
            Sds::Inline {
                len: data.len() as u8,
                buf,
            }
        } else {
            Sds::Heap(data.into())
        }
    }

    /// The empty string.
    pub const fn empty() -> Sds {
        Sds::Inline {
            len: 0,
            buf: [0; INLINE],
        }
    }

    /// The decimal form of `n`.
    pub fn from_i64(n: i64) -> Sds {
        let mut b = itoa::Buffer::new();
        Sds::new(b.format(n).as_bytes())
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Sds::Inline { len, buf } => &buf[..*len as usize],
            Sds::Heap(b) => b,
        }
    }

    /// A reference-counted copy, for replies.
    pub fn to_bytes(&self) -> Bytes {
        Bytes::copy_from_slice(self.as_slice())
    }

    /// Heap bytes this string owns beyond its own 24 bytes.
    pub fn heap_size(&self) -> usize {
        match self {
            Sds::Inline { .. } => 0,
            Sds::Heap(b) => b.len(),
        }
    }
}

impl Deref for Sds {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for Sds {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Borrow<[u8]> for Sds {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Hash for Sds {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl PartialEq for Sds {
    fn eq(&self, other: &Sds) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Sds {}

impl PartialOrd for Sds {
    fn partial_cmp(&self, other: &Sds) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Sds {
    fn cmp(&self, other: &Sds) -> std::cmp::Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl fmt::Debug for Sds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_slice()))
    }
}

impl From<&[u8]> for Sds {
    fn from(data: &[u8]) -> Sds {
        Sds::new(data)
    }
}

impl From<&Bytes> for Sds {
    fn from(data: &Bytes) -> Sds {
        Sds::new(data)
    }
}

impl From<Vec<u8>> for Sds {
    fn from(data: Vec<u8>) -> Sds {
        if data.len() <= INLINE {
            Sds::new(&data)
        } else {
            Sds::Heap(data.into_boxed_slice())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn inline_and_heap_strings_behave_like_slices() {
        let short = Sds::new(b"abc");
        let long = Sds::new(&[7u8; 40]);
        assert!(matches!(short, Sds::Inline { .. }));
        assert!(matches!(long, Sds::Heap(_)));
        assert_eq!(&*short, b"abc");
        assert_eq!(long.len(), 40);
        let set: HashSet<Sds> = [short.clone(), long.clone()].into_iter().collect();
        assert!(set.contains(&b"abc"[..]));
        assert!(set.contains(&[7u8; 40][..]));
        assert_eq!(std::mem::size_of::<Sds>(), 24);
    }
}
