//! POSIX shell quoting, for commands shown to people (journal, reports,
//! manual recovery) that must run exactly as shown when pasted.

/// `argv` as one shell-quoted line, for humans and manual-recovery text.
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Quotes `s` for a POSIX shell when it needs it.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        let argv = vec!["sh".into(), "-c".into(), "rm -f 'x'".into()];
        assert_eq!(shell_words(&argv), r"sh -c 'rm -f '\''x'\'''");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a/b.c"), "a/b.c");
    }
}
