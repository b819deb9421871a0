//! Vietnamese order for names people read in lists (villages, groups, nodes): the
//! alphabet's own order — a ă â b c d đ e ê g h i k l m n o ô ơ p q r s t u ư v x y — with
//! tones only breaking ties (none, huyền, hỏi, ngã, sắc, nặng), case ignored, and numbers
//! by value ("Cụm loa 2" before "Cụm loa 10"). Byte order puts "Thôn Đồng Tâm" after
//! "Thôn Nam Hải"; this puts it right after the D's.
//!
//! Written here rather than taken from a collation crate: the whole table is a few lines,
//! and ICU's collator would bring tens of thousands of lines of data for one language.

use std::cmp::Ordering;

/// Vowels with their tones, in tone order.
const TONED: [&str; 12] = [
    "aàảãáạ",
    "ăằẳẵắặ",
    "âầẩẫấậ",
    "eèẻẽéẹ",
    "êềểễếệ",
    "iìỉĩíị",
    "oòỏõóọ",
    "ôồổỗốộ",
    "ơờởỡớợ",
    "uùủũúụ",
    "ưừửữứự",
    "yỳỷỹýỵ",
];
/// The alphabet, in order (f, j, w and z, not Vietnamese, sort where English puts them).
const ALPHABET: &str = "aăâbcdđeêfghijklmnoôơpqrstuưvwxyz";

/// A character's place: (letter rank, tone). Other characters rank after the letters by
/// code point, spaces and punctuation before them.
fn place(c: char) -> (u32, u8) {
    let c = c.to_lowercase().next().unwrap_or(c);
    for row in TONED {
        if let Some(tone) = row.chars().position(|t| t == c) {
            let base = row.chars().next().unwrap_or(c);
            return (rank(base), tone as u8);
        }
    }
    (rank(c), 0)
}

fn rank(c: char) -> u32 {
    match ALPHABET.chars().position(|a| a == c) {
        Some(i) => 0x100 + i as u32,
        None if c.is_alphanumeric() => 0x200 + c as u32,
        None => c as u32 % 0x100,
    }
}

/// A name split into digit runs (by value) and characters (by place).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Piece {
    Number(u128),
    Letter(u32),
}

fn pieces(s: &str) -> (Vec<Piece>, Vec<u8>) {
    let (mut primary, mut tones) = (Vec::new(), Vec::new());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if let Some(d) = c.to_digit(10) {
            let mut n = u128::from(d);
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                n = n.saturating_mul(10).saturating_add(u128::from(d));
                chars.next();
            }
            primary.push(Piece::Number(n));
        } else {
            let (r, tone) = place(c);
            primary.push(Piece::Letter(r));
            tones.push(tone);
        }
    }
    (primary, tones)
}

/// Compares two names in Vietnamese order.
pub fn vi_cmp(a: &str, b: &str) -> Ordering {
    let (pa, ta) = pieces(a);
    let (pb, tb) = pieces(b);
    pa.cmp(&pb).then_with(|| ta.cmp(&tb)).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(names: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        v.sort_by(|a, b| vi_cmp(a, b));
        v
    }

    #[test]
    fn villages_sort_as_vietnamese_readers_expect() {
        assert_eq!(
            sorted(&[
                "Thôn Nam Hải",
                "Thôn Đồng Tâm",
                "Thôn Đông",
                "Thôn Bắc",
                "Thôn Dương Liễu",
                "thôn An"
            ]),
            [
                "thôn An",
                "Thôn Bắc",
                "Thôn Dương Liễu",
                "Thôn Đông",
                "Thôn Đồng Tâm",
                "Thôn Nam Hải"
            ]
        );
    }

    #[test]
    fn letters_before_tones_and_numbers_by_value() {
        // ă after a even when a carries a tone; the tone only breaks a tie.
        assert_eq!(sorted(&["Ăn", "Án", "An"]), ["An", "Án", "Ăn"]);
        assert_eq!(
            sorted(&["Ma", "Mà", "Mả", "Mã", "Má", "Mạ"]),
            ["Ma", "Mà", "Mả", "Mã", "Má", "Mạ"]
        );
        assert_eq!(
            sorted(&["Cụm loa 10", "Cụm loa 2", "Cụm loa 1"]),
            ["Cụm loa 1", "Cụm loa 2", "Cụm loa 10"]
        );
        assert_eq!(sorted(&["Ơ", "Ô", "O", "P"]), ["O", "Ô", "Ơ", "P"]);
        assert_eq!(sorted(&["Ư", "U", "V"]), ["U", "Ư", "V"]);
    }
}
