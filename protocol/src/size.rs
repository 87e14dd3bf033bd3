//! Sizes in bytes as people write them: `65536`, `64K`, `10MiB`, `2G`.
//!
//! Both binaries take sizes (`mayflyctl submit --max-output`, `mayflyd
//! --max-output`), so they parse and print them the same way. Suffixes are
//! binary (K = 1024), with or without `i` and `B`, in any case.

/// Parses a size: a whole number, optionally followed by `K`, `M`, `G` or
/// `T` (powers of 1024; `KiB`, `kb`, … mean the same) or `B`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let digits = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits);
    let bad = || {
        format!(
            "{text:?} is not a size; write a whole number of bytes, or one with K, M or G (64K, 10M, 1G)"
        )
    };
    let number: u64 = number.parse().map_err(|_| bad())?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(bad()),
    };
    number
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{text:?} is too large a size"))
}

/// A size as [`parse_size`] reads it back: the largest unit that divides it.
pub fn format_size(bytes: u64) -> String {
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        let scale = 1u64 << shift;
        if bytes >= scale && bytes.is_multiple_of(scale) {
            return format!("{}{unit}", bytes / scale);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("64kb"), Ok(64 << 10));
        assert_eq!(parse_size("10M"), Ok(10 << 20));
        assert_eq!(parse_size("10 MiB"), Ok(10 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        assert_eq!(parse_size("12B"), Ok(12));
        for bad in ["", "K", "-1", "1.5M", "10X", "10Mx", "10 M B", "1KK"] {
            assert!(parse_size(bad).is_err(), "{bad:?} parsed");
        }
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("100000000T").unwrap_err().contains("too large"));
    }

    #[test]
    fn sizes_print_as_they_parse() {
        for bytes in [0, 1, 1000, 1024, 65536, 10 << 20, 3 << 30, (1 << 20) + 1] {
            assert_eq!(parse_size(&format_size(bytes)), Ok(bytes), "{bytes}");
        }
        assert_eq!(format_size(10 << 20), "10M");
    }
}
