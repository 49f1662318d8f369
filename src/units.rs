//! Human units for sizes and durations, shared by both front ends.

use humansize::{format_size, BINARY};

/// `1.5 GiB`, `512 B`.
pub fn bytes(n: u64) -> String {
    format_size(n, BINARY)
}

/// A signed size change: `-1.2 GiB`, `+4 KiB`, `0 B`.
pub fn delta(before: u64, after: u64) -> String {
    if after >= before {
        let d = after - before;
        if d == 0 {
            "0 B".to_string()
        } else {
            format!("+{}", bytes(d))
        }
    } else {
        format!("-{}", bytes(before - after))
    }
}

/// Seconds with a sensible precision: `0.04 s`, `3.2 s`, `2 min 05 s`.
pub fn seconds(s: f64) -> String {
    if s < 1.0 {
        format!("{s:.2} s")
    } else if s < 60.0 {
        format!("{s:.1} s")
    } else {
        let m = (s / 60.0).floor() as u64;
        let r = s - (m as f64) * 60.0;
        format!("{m} min {r:02.0} s")
    }
}

/// Thousands separators for row counts: `1,234,567`.
pub fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `s` on one line (control characters as spaces), cut to `n` characters with an ellipsis.
pub fn one_line(s: &str, n: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= n {
        flat
    } else {
        let mut t: String = flat.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// The first `n` values of a vector, `decimals` after the point, with ", …" when it has more:
/// how the rows view, the records view and `records` show a vector.
pub fn floats(v: &[f32], n: usize, decimals: usize) -> String {
    let head: Vec<String> = v
        .iter()
        .take(n)
        .map(|x| format!("{x:.decimals$}"))
        .collect();
    let more = if v.len() > n { ", …" } else { "" };
    format!("{}{more}", head.join(", "))
}

/// How many of `width` cells a bar for `part` of `whole` fills (at least one for any part).
pub fn bar_cells(part: u64, whole: u64, width: usize) -> usize {
    let n = if whole == 0 {
        0
    } else {
        ((part as f64 / whole as f64) * width as f64).round() as usize
    };
    n.min(width).max(usize::from(part > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_get_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1234567), "1,234,567");
    }

    #[test]
    fn sizes_are_binary_units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.50 KiB");
        assert_eq!(delta(2048, 1024), "-1 KiB");
        assert_eq!(delta(1024, 1024), "0 B");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(seconds(0.042), "0.04 s");
        assert_eq!(seconds(3.21), "3.2 s");
        assert_eq!(seconds(125.0), "2 min 05 s");
    }
}
