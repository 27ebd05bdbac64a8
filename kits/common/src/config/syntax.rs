//! The file syntax: the subset of shell assignments `/etc/default/LifeKeeper` uses —
//! `[export ]KEY=value`, `'…'` and `"…"` quoting, `\` escapes, `#` comments — with
//! everything a shell would expand or execute refused, never evaluated.

use super::SHOWN_VALUE;

/// One `KEY=value` assignment read from a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// Parses the shell-assignment subset used by `/etc/default/LifeKeeper`.
///
/// With `strict`, any line that is not blank, a comment or `[export ]KEY=value` is an error;
/// without it such lines are skipped. Errors are `(line number, what is wrong and the fix)`.
pub fn parse_assignments(text: &[u8], strict: bool) -> Result<Vec<Assignment>, (usize, String)> {
    let mut out = Vec::new();
    for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
        let n = i + 1;
        match parse_line(raw) {
            Ok(Some((key, value))) => out.push(Assignment {
                key,
                value,
                line: n,
            }),
            Ok(None) => {}
            Err(e) if strict => return Err((n, e)),
            Err(_) => {}
        }
    }
    Ok(out)
}

/// Parses one line of a shell-style defaults file leniently: `Some((key, value))` for a
/// well-formed `[export ]KEY=value`, `None` for blanks, comments and anything else.
pub fn parse_assignment_line(line: &str) -> Option<(String, String)> {
    parse_line(line.as_bytes()).ok().flatten()
}

fn parse_line(raw: &[u8]) -> Result<Option<(String, String)>, String> {
    if raw.last() == Some(&b'\r') {
        return Err("the line ends with a carriage return (Windows line endings): convert the file with `sed -i 's/\\r$//' FILE`".into());
    }
    if raw.contains(&0) {
        return Err("the line contains a NUL byte: rewrite it as plain text".into());
    }
    let line = std::str::from_utf8(raw)
        .map_err(|_| "the line is not valid UTF-8: rewrite it as plain text".to_string())?;
    let line = line.trim_start();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let line = line.strip_prefix("export ").map_or(line, str::trim_start);
    let Some(eq) = line.find('=') else {
        return Err(format!(
            "'{}' is not a KEY=value assignment",
            crate::logging::shown(line.trim_end(), SHOWN_VALUE)
        ));
    };
    let key = &line[..eq];
    let value_text = &line[eq + 1..];
    let after_space = value_text.trim_start();
    let spaced_value = value_text.len() != after_space.len()
        && !after_space.is_empty()
        && !after_space.starts_with('#');
    if key.ends_with(char::is_whitespace) || spaced_value {
        return Err(format!(
            "spaces around '=' are not allowed: write {}=value",
            key.trim()
        ));
    }
    let valid_key = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_key {
        return Err(format!(
            "'{}' is not a valid key name: use letters, digits and '_', e.g. TIMEOUT=30",
            crate::logging::shown(key, 64)
        ));
    }
    let value = parse_value(&line[eq + 1..]).map_err(|e| format!("{key}: {e}"))?;
    Ok(Some((key.to_owned(), value)))
}

/// The value part of an assignment: plain words, '...' and "..." quoting, `\` escapes, an
/// optional trailing `# comment`. Anything a shell would expand or execute is refused.
fn parse_value(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => loop {
                match chars.next() {
                    Some('\'') => break,
                    Some(c) => out.push(c),
                    None => return Err("unterminated single quote: close the value with '".into()),
                }
            },
            '"' => loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c @ ('"' | '\\' | '$' | '`')) => out.push(c),
                        Some(c) => {
                            out.push('\\');
                            out.push(c);
                        }
                        None => {
                            return Err("unterminated double quote: close the value with \"".into());
                        }
                    },
                    Some('$' | '`') => {
                        return Err(
                            "shell expansion ($ or `) is not supported: write the value literally"
                                .into(),
                        );
                    }
                    Some(c) => out.push(c),
                    None => return Err("unterminated double quote: close the value with \"".into()),
                }
            },
            '\\' => match chars.next() {
                Some(c) => out.push(c),
                None => return Err("the value ends with a lone backslash: remove it".into()),
            },
            ' ' | '\t' => {
                let rest: String = chars.collect();
                let rest = rest.trim_start();
                if rest.is_empty() || rest.starts_with('#') {
                    break;
                }
                return Err(
                    "unquoted space in the value: put the whole value in double quotes".into(),
                );
            }
            '$' | '`' => {
                return Err(
                    "shell expansion ($ or `) is not supported: write the value literally".into(),
                );
            }
            ';' | '|' | '&' | '<' | '>' | '(' | ')' => {
                return Err(format!(
                    "'{c}' is shell syntax: quote the value if it is meant literally"
                ));
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_shell_assignment_forms() {
        let text = b"# comment\n\n  DEVICE=\"/dev/sdb /dev/sdc\"  # two disks\nMOUNTPOINT='/mnt/my data'\nexport NAME=plain\\ word\nNOTE=\"say \\\"hi\\\" \\$5\"\nTYPE=EA\nTIMEOUT=45\n";
        let a = parse_assignments(text, true).unwrap();
        let kv: Vec<(&str, &str)> = a
            .iter()
            .map(|a| (a.key.as_str(), a.value.as_str()))
            .collect();
        assert_eq!(
            kv,
            [
                ("DEVICE", "/dev/sdb /dev/sdc"),
                ("MOUNTPOINT", "/mnt/my data"),
                ("NAME", "plain word"),
                ("NOTE", "say \"hi\" $5"),
                ("TYPE", "EA"),
                ("TIMEOUT", "45")
            ]
        );
        assert_eq!(a[0].line, 3);
    }

    /// Whatever bytes a configuration file holds, parsing answers Ok or Err, never panics.
    #[test]
    fn random_files_never_panic() {
        let alphabet = b"AZ_az09=#'\"\\$` \t\r\n\x80\xffexport";
        let mut seed = 0x94d0_49bb_1331_11ebu64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let len = (next() % 80) as usize;
            let b: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let _ = parse_assignments(&b, true);
            let _ = parse_assignments(&b, false);
            let _ = parse_assignment_line(&String::from_utf8_lossy(&b));
        }
    }
}
