//! Just enough of tar to find files inside an archive without unpacking it: an index of entry
//! name → (offset of the data, size), so blobs are streamed straight out of the archive file.
//!
//! Reads ustar headers with the pax (`x`) and GNU long-name (`L`) extensions, which is what
//! `docker save`, buildx and Go's archive/tar write. Nothing is extracted.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};

const BLOCK: u64 = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub offset: u64,
    pub size: u64,
}

/// Indexes the regular files of a tar archive by their path (a leading `./` removed).
///
/// # Errors
/// An I/O error, or `InvalidData` when a header is not a tar header.
pub fn index(mut file: impl Read + Seek) -> std::io::Result<HashMap<String, Entry>> {
    let mut entries = HashMap::new();
    let mut header = [0u8; BLOCK as usize];
    let mut position = 0u64;
    let mut long_name: Option<String> = None;
    loop {
        file.seek(SeekFrom::Start(position))?;
        if read_full(&mut file, &mut header)? < header.len() {
            break; // a missing end-of-archive marker is tolerated, as by GNU tar
        }
        if header.iter().all(|b| *b == 0) {
            break;
        }
        if !checksum_ok(&header) {
            return Err(invalid(format!("no tar header at byte {position}")));
        }
        let size = octal(&header[124..136])
            .ok_or_else(|| invalid(format!("bad size in the tar header at byte {position}")))?;
        let data = position + BLOCK;
        let kind = header[156];
        match kind {
            b'x' | b'L' => {
                let mut body =
                    vec![0u8; usize::try_from(size).map_err(|_| invalid("huge header".into()))?];
                file.seek(SeekFrom::Start(data))?;
                file.read_exact(&mut body)?;
                long_name = if kind == b'L' {
                    Some(
                        String::from_utf8_lossy(&body)
                            .trim_end_matches('\0')
                            .to_string(),
                    )
                } else {
                    pax_path(&body)
                };
            }
            _ => {
                let name = long_name.take().unwrap_or_else(|| ustar_name(&header));
                if kind == b'0' || kind == 0 || kind == b'7' {
                    let name = name.trim_start_matches("./").to_string();
                    entries.insert(name, Entry { offset: data, size });
                }
            }
        }
        position = data + size.div_ceil(BLOCK) * BLOCK;
    }
    Ok(entries)
}

fn read_full(file: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

fn checksum_ok(header: &[u8; 512]) -> bool {
    let Some(stored) = octal(&header[148..156]) else {
        return false;
    };
    let sum: u64 = header
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(*b)
            }
        })
        .sum();
    sum == stored
}

/// A NUL- or space-terminated octal field; GNU's base-256 form for sizes over 8 GiB too.
fn octal(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let mut value = u64::from(field[0] & 0x7f);
        for b in &field[1..] {
            value = value.checked_mul(256)?.checked_add(u64::from(*b))?;
        }
        return Some(value);
    }
    let text: String = field
        .iter()
        .take_while(|b| **b != 0)
        .map(|b| char::from(*b))
        .collect();
    let text = text.trim();
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

fn ustar_name(header: &[u8; 512]) -> String {
    let field = |range: std::ops::Range<usize>| {
        let bytes = &header[range];
        let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(&bytes[..end]).into_owned()
    };
    let name = field(0..100);
    let prefix = if &header[257..262] == b"ustar" {
        field(345..500)
    } else {
        String::new()
    };
    if prefix.is_empty() {
        name
    } else {
        format!("{prefix}/{name}")
    }
}

/// The `path` record of a pax extended header (`<len> path=<value>\n` records).
fn pax_path(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    text.lines().find_map(|record| {
        let (_, kv) = record.split_once(' ')?;
        kv.strip_prefix("path=").map(str::to_string)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, size: u64, kind: u8) -> [u8; 512] {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        let size = format!("{size:011o}");
        h[124..135].copy_from_slice(size.as_bytes());
        h[156] = kind;
        h[257..263].copy_from_slice(b"ustar\0");
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        h
    }

    fn archive(files: &[(&str, &[u8], u8)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, data, kind) in files {
            out.extend_from_slice(&header(name, data.len() as u64, *kind));
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.extend_from_slice(&[0u8; 1024]);
        out
    }

    #[test]
    fn indexes_files_and_long_names() {
        let long = format!("blobs/sha256/{}", "a".repeat(120));
        let pax = format!("{} path={long}\n", long.len() + 7 + 3);
        let tar = archive(&[
            ("./index.json", b"{}", b'0'),
            ("blobs/", b"", b'5'),
            ("PaxHeader", pax.as_bytes(), b'x'),
            ("short", b"hello", b'0'),
        ]);
        let index = index(std::io::Cursor::new(&tar)).unwrap();
        assert_eq!(
            index["index.json"],
            Entry {
                offset: 512,
                size: 2
            }
        );
        let e = index[&long];
        assert_eq!(
            &tar[e.offset as usize..(e.offset + e.size) as usize],
            b"hello"
        );
        assert!(!index.contains_key("blobs/"), "directories are not files");
    }

    #[test]
    fn rejects_what_is_not_a_tar() {
        let junk = vec![7u8; 2048];
        assert!(index(std::io::Cursor::new(junk)).is_err());
    }
}
