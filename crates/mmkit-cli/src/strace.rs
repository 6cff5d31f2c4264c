//! A parser for `strace -f -y -qq` output, as recorded in `shared/traces/*.strace`.
//!
//! Each line is `PID  name(args) = RET [ERRNO (text)]`. With several threads, a call cut by
//! another thread's line is printed as `PID name(args <unfinished ...>` and completed later by
//! `PID <... name resumed>rest) = RET`; the call takes effect at its `resumed` line, so the
//! parser joins the two halves and yields the call there. Signal (`--- SIG… ---`) and exit
//! (`+++ … +++`) notices are recognised and ignored. Anything else is an error naming the line.

use std::collections::HashMap;
use std::fmt;

/// What a call returned, as strace printed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ret {
    /// A non-negative value (`= 0`, `= 0x7ffff7fc0000`, `= 3</path>`).
    Value(u64),
    /// `= -1 ENOMEM (Cannot allocate memory)`: the errno's symbolic name.
    Error(String),
    /// `= ?`: the call did not return (exit, exit_group, a successful execve in a thread…).
    Unknown,
}

/// One complete syscall.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// 1-based line number of the line that completed the call.
    pub line: usize,
    /// The thread id that made the call (0 if the trace has no pid column).
    pub pid: u32,
    /// Syscall name.
    pub name: String,
    /// The top-level arguments, as printed (trimmed).
    pub args: Vec<String>,
    /// What it returned.
    pub ret: Ret,
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name, self.args.join(", "))?;
        match &self.ret {
            Ret::Value(v) if *v >= 0x1_0000 => write!(f, " = {v:#x}"),
            Ret::Value(v) => write!(f, " = {v}"),
            Ret::Error(e) => write!(f, " = -1 {e}"),
            Ret::Unknown => write!(f, " = ?"),
        }
    }
}

/// What one line of the trace was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete call (possibly completed by this `resumed` line).
    Call(Call),
    /// The first half of a call that another thread interrupted; `name` is the syscall.
    Unfinished {
        /// Thread id.
        pid: u32,
        /// Syscall name.
        name: String,
    },
    /// A blank line, a signal or exit notice: nothing to do.
    Ignored,
}

/// A malformed line: its number and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub msg: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.msg)
    }
}

impl std::error::Error for ParseError {}

/// A call whose first half was seen (`<unfinished ...>`).
#[derive(Clone, Debug)]
struct Pending {
    name: String,
    /// The argument text printed so far.
    text: String,
}

/// Streaming parser: feed it the lines in order.
#[derive(Debug, Default)]
pub struct Parser {
    pending: HashMap<u32, Pending>,
}

impl Parser {
    /// A parser with nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// The first half of a call that `pid` has in flight, as `(name, argument text)`.
    pub fn pending(&self, pid: u32) -> Option<(&str, &str)> {
        self.pending.get(&pid).map(|p| (p.name.as_str(), p.text.as_str()))
    }

    /// Threads with a call in flight.
    pub fn pending_pids(&self) -> impl Iterator<Item = u32> + '_ {
        self.pending.keys().copied()
    }

    /// Parses line `line_no` (1-based).
    pub fn feed(&mut self, line_no: usize, line: &str) -> Result<Line, ParseError> {
        let err = |msg: String| ParseError { line: line_no, msg };
        let line = line.trim_end_matches(['\n', '\r']);
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return Ok(Line::Ignored);
        }
        // Optional pid column (strace -f): digits, then blanks.
        let (pid, rest) = split_pid(trimmed);
        let rest = rest.trim_start();
        if rest.starts_with("---") || rest.starts_with("+++") {
            return Ok(Line::Ignored);
        }
        if let Some(after) = rest.strip_prefix("<... ") {
            // `<... name resumed>rest`
            let close = after
                .find(" resumed>")
                .ok_or_else(|| err(format!("`<...` without ` resumed>`: {trimmed:?}")))?;
            let name = &after[..close];
            let tail = &after[close + " resumed>".len()..];
            let p = self.pending.remove(&pid).ok_or_else(|| {
                err(format!("`{name} resumed` for pid {pid} without an unfinished call"))
            })?;
            if p.name != name {
                return Err(err(format!(
                    "pid {pid} resumes `{name}` but its unfinished call is `{}`",
                    p.name
                )));
            }
            let mut text = p.text.trim_end().to_string();
            if !text.is_empty() && !tail.starts_with([')', ',']) && !tail.starts_with(' ') {
                text.push(' ');
            }
            text.push_str(tail);
            return parse_call_body(line_no, pid, name, &text).map(Line::Call);
        }
        let open = rest
            .find('(')
            .ok_or_else(|| err(format!("expected `name(args) = result`: {trimmed:?}")))?;
        let name = &rest[..open];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(err(format!("bad syscall name {name:?}")));
        }
        let body = &rest[open + 1..];
        if let Some(head) = body.strip_suffix("<unfinished ...>") {
            if self.pending.contains_key(&pid) {
                return Err(err(format!(
                    "pid {pid} starts `{name}` while another call is unfinished"
                )));
            }
            self.pending.insert(pid, Pending { name: name.to_string(), text: head.to_string() });
            return Ok(Line::Unfinished { pid, name: name.to_string() });
        }
        parse_call_body(line_no, pid, name, body).map(Line::Call)
    }
}

/// Splits the leading pid column; `0` when there is none.
fn split_pid(s: &str) -> (u32, &str) {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && s[digits..].starts_with([' ', '\t']) {
        if let Ok(pid) = s[..digits].parse() {
            return (pid, &s[digits..]);
        }
    }
    (0, s)
}

/// Parses `args) = RET ...` (everything after the opening parenthesis).
fn parse_call_body(line: usize, pid: u32, name: &str, body: &str) -> Result<Call, ParseError> {
    let err = |msg: String| ParseError { line, msg };
    let (args, close) = split_args(body).map_err(|m| err(format!("{name}: {m}")))?;
    let after = body[close + 1..].trim_start();
    let after = after
        .strip_prefix('=')
        .ok_or_else(|| err(format!("{name}: expected ` = result` after the arguments")))?;
    let ret = parse_ret(after.trim()).map_err(|m| err(format!("{name}: {m}")))?;
    Ok(Call { line, pid, name: name.to_string(), args, ret })
}

/// Splits the top-level, comma-separated arguments of `body` up to its closing parenthesis,
/// honouring `()[]{}` nesting, `"…"` strings with escapes and `<…>` fd annotations.
/// Returns the arguments and the byte index of the closing parenthesis.
pub fn split_args(body: &str) -> Result<(Vec<String>, usize), String> {
    let bytes = body.as_bytes();
    let mut depth: Vec<u8> = Vec::new();
    let mut args = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut in_str = false;
    while i < bytes.len() {
        let b = bytes[i];
        if in_str {
            match b {
                b'\\' => i += 1,
                b'"' => in_str = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'(' => depth.push(b')'),
            b'[' => depth.push(b']'),
            b'{' => depth.push(b'}'),
            // An fd annotation `3</path>`: `<` right after a digit.
            b'<' if i > 0 && bytes[i - 1].is_ascii_digit() => depth.push(b'>'),
            b')' | b']' | b'}' | b'>' => {
                if depth.last() == Some(&b) {
                    depth.pop();
                } else if b == b')' && depth.is_empty() {
                    let last = body[start..i].trim();
                    if !last.is_empty() || !args.is_empty() {
                        args.push(last.to_string());
                    }
                    return Ok((args, i));
                } else if b != b'>' {
                    return Err(format!("unbalanced `{}` at column {}", b as char, i + 1));
                }
            }
            b',' if depth.is_empty() => {
                args.push(body[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    Err(if in_str {
        "unterminated string".to_string()
    } else {
        "missing `)` closing the arguments".to_string()
    })
}

/// Parses what follows ` = `.
fn parse_ret(s: &str) -> Result<Ret, String> {
    let mut words = s.split_whitespace();
    let first = words.next().ok_or("missing return value")?;
    if first == "?" {
        return Ok(Ret::Unknown);
    }
    if first.starts_with('-') {
        // `-1 ENOMEM (Cannot allocate memory)`
        let _ = parse_int(first).ok_or_else(|| format!("bad return value {first:?}"))?;
        let name = words.next().ok_or_else(|| format!("return {first} without an errno name"))?;
        if !name.starts_with('E')
            || !name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return Err(format!("bad errno name {name:?}"));
        }
        return Ok(Ret::Error(name.to_string()));
    }
    // Strip an fd annotation (`3</path>`) or anything glued after the number.
    let num_end = first
        .find(|c: char| !(c.is_ascii_hexdigit() || c == 'x' || c == 'X'))
        .unwrap_or(first.len());
    let v = parse_int(&first[..num_end]).ok_or_else(|| format!("bad return value {first:?}"))?;
    Ok(Ret::Value(v))
}

/// `s` without strace's `/* … */` annotations (`0x3e7 /* MADV_??? */`, `/* 35 vars */`).
fn strip_comments(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains("/*") {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        match rest[i..].find("*/") {
            Some(j) => rest = &rest[i + j + 2..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// Parses `NULL`, decimal (possibly negative, as two's complement), `0x` hex or `0`-octal.
pub fn parse_int(s: &str) -> Option<u64> {
    let s = strip_comments(s);
    let s = s.trim();
    if s == "NULL" {
        return Some(0);
    }
    if let Some(neg) = s.strip_prefix('-') {
        return parse_int(neg).map(|v| v.wrapping_neg());
    }
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return u64::from_str_radix(h, 16).ok();
    }
    if s.len() > 1 && s.starts_with('0') {
        return u64::from_str_radix(&s[1..], 8).ok();
    }
    s.parse().ok()
}

/// A descriptor argument: `-1`, `3` or `3</path>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FdArg {
    /// The number, as a register value (`-1` is `u64::MAX`).
    pub raw: u64,
    /// The path strace printed with `-y`, if any.
    pub path: Option<String>,
}

/// Parses a descriptor argument.
pub fn parse_fd(s: &str) -> Option<FdArg> {
    let s = s.trim();
    match s.find('<') {
        Some(i) => {
            let path = s[i + 1..].strip_suffix('>')?;
            Some(FdArg { raw: parse_int(&s[..i])?, path: Some(path.to_string()) })
        }
        None => Some(FdArg { raw: parse_int(s)?, path: None }),
    }
}

/// Symbolic constants of one flag family.
pub type FlagTable = &'static [(&'static str, u64)];

/// `PROT_*`.
pub const PROT: FlagTable = &[
    ("PROT_NONE", 0),
    ("PROT_READ", 0x1),
    ("PROT_WRITE", 0x2),
    ("PROT_EXEC", 0x4),
    ("PROT_SEM", 0x8),
    ("PROT_GROWSDOWN", 0x0100_0000),
    ("PROT_GROWSUP", 0x0200_0000),
];

/// `MAP_*` (x86-64), including the `MAP_HUGE_*` sizes.
pub const MAP: FlagTable = &[
    ("MAP_FILE", 0),
    ("MAP_SHARED", 0x1),
    ("MAP_PRIVATE", 0x2),
    ("MAP_SHARED_VALIDATE", 0x3),
    ("MAP_DROPPABLE", 0x8),
    ("MAP_FIXED", 0x10),
    ("MAP_ANONYMOUS", 0x20),
    ("MAP_ANON", 0x20),
    ("MAP_32BIT", 0x40),
    ("MAP_GROWSDOWN", 0x100),
    ("MAP_DENYWRITE", 0x800),
    ("MAP_EXECUTABLE", 0x1000),
    ("MAP_LOCKED", 0x2000),
    ("MAP_NORESERVE", 0x4000),
    ("MAP_POPULATE", 0x8000),
    ("MAP_NONBLOCK", 0x1_0000),
    ("MAP_STACK", 0x2_0000),
    ("MAP_HUGETLB", 0x4_0000),
    ("MAP_SYNC", 0x8_0000),
    ("MAP_FIXED_NOREPLACE", 0x10_0000),
    ("MAP_UNINITIALIZED", 0x400_0000),
    ("MAP_HUGE_64KB", 16 << 26),
    ("MAP_HUGE_512KB", 19 << 26),
    ("MAP_HUGE_1MB", 20 << 26),
    ("MAP_HUGE_2MB", 21 << 26),
    ("MAP_HUGE_8MB", 23 << 26),
    ("MAP_HUGE_16MB", 24 << 26),
    ("MAP_HUGE_32MB", 25 << 26),
    ("MAP_HUGE_256MB", 28 << 26),
    ("MAP_HUGE_512MB", 29 << 26),
    ("MAP_HUGE_1GB", 30 << 26),
    ("MAP_HUGE_2GB", 31 << 26),
    ("MAP_HUGE_16GB", 34 << 26),
];

/// `MREMAP_*`.
pub const MREMAP: FlagTable =
    &[("MREMAP_MAYMOVE", 1), ("MREMAP_FIXED", 2), ("MREMAP_DONTUNMAP", 4)];

/// `MADV_*` (values, not flags).
pub const MADV: FlagTable = &[
    ("MADV_NORMAL", 0),
    ("MADV_RANDOM", 1),
    ("MADV_SEQUENTIAL", 2),
    ("MADV_WILLNEED", 3),
    ("MADV_DONTNEED", 4),
    ("MADV_FREE", 8),
    ("MADV_REMOVE", 9),
    ("MADV_DONTFORK", 10),
    ("MADV_DOFORK", 11),
    ("MADV_MERGEABLE", 12),
    ("MADV_UNMERGEABLE", 13),
    ("MADV_HUGEPAGE", 14),
    ("MADV_NOHUGEPAGE", 15),
    ("MADV_DONTDUMP", 16),
    ("MADV_DODUMP", 17),
    ("MADV_WIPEONFORK", 18),
    ("MADV_KEEPONFORK", 19),
    ("MADV_COLD", 20),
    ("MADV_PAGEOUT", 21),
    ("MADV_POPULATE_READ", 22),
    ("MADV_POPULATE_WRITE", 23),
    ("MADV_DONTNEED_LOCKED", 24),
    ("MADV_COLLAPSE", 25),
    ("MADV_HWPOISON", 100),
    ("MADV_SOFT_OFFLINE", 101),
    ("MADV_GUARD_INSTALL", 102),
    ("MADV_GUARD_REMOVE", 103),
];

/// `MS_*` (msync).
pub const MS: FlagTable = &[("MS_ASYNC", 1), ("MS_INVALIDATE", 2), ("MS_SYNC", 4)];

/// `MCL_*` (mlockall).
pub const MCL: FlagTable = &[("MCL_CURRENT", 1), ("MCL_FUTURE", 2), ("MCL_ONFAULT", 4)];

/// `MLOCK_*` (mlock2).
pub const MLOCK: FlagTable = &[("MLOCK_ONFAULT", 1)];

/// Parses a flag expression such as `MAP_PRIVATE|MAP_ANONYMOUS|0x40`, `21<<MAP_HUGE_SHIFT`
/// or a plain number, with `table`'s names.
pub fn parse_flags(s: &str, table: FlagTable) -> Result<u64, String> {
    let s = strip_comments(s);
    let s = s.trim();
    if s.is_empty() {
        return Err("empty flag expression".into());
    }
    let mut v = 0u64;
    for tok in s.split('|') {
        let tok = tok.trim();
        if let Some(&(_, bits)) = table.iter().find(|(n, _)| *n == tok) {
            v |= bits;
        } else if let Some((n, shift)) = tok.split_once("<<") {
            let n = parse_int(n).ok_or_else(|| format!("bad flag {tok:?}"))?;
            let shift = match shift.trim() {
                "MAP_HUGE_SHIFT" => 26,
                other => parse_int(other).ok_or_else(|| format!("bad flag {tok:?}"))?,
            };
            v |= n.checked_shl(shift as u32).ok_or_else(|| format!("bad flag {tok:?}"))?;
        } else if let Some(n) = parse_int(tok) {
            v |= n;
        } else {
            return Err(format!("unknown flag {tok:?}"));
        }
    }
    Ok(v)
}

/// The `CLONE_*` names in a clone/clone3 argument list (`flags=A|B|SIGCHLD`).
pub fn clone_flags(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for a in args {
        // clone3 prints a struct: `{flags=CLONE_VM|…, child_tid=…}`.
        let a = a.trim_start_matches('{');
        for field in a.split(", ") {
            if let Some(v) = field.trim().strip_prefix("flags=") {
                out.extend(v.split('|').map(|t| t.trim().trim_end_matches('}').to_string()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(l: Line) -> Call {
        match l {
            Line::Call(c) => c,
            other => panic!("not a call: {other:?}"),
        }
    }

    #[test]
    fn plain_calls() {
        let mut p = Parser::new();
        let c = call(p.feed(3, "9980  mmap(NULL, 6003000, PROT_READ, MAP_PRIVATE|MAP_DENYWRITE, 3</usr/local/lib/libpython3.11.so.1.0>, 0) = 0x7ffff7a00000").unwrap());
        assert_eq!(c.pid, 9980);
        assert_eq!(c.name, "mmap");
        assert_eq!(c.args.len(), 6);
        assert_eq!(c.args[4], "3</usr/local/lib/libpython3.11.so.1.0>");
        assert_eq!(c.ret, Ret::Value(0x7fff_f7a0_0000));
        let fd = parse_fd(&c.args[4]).unwrap();
        assert_eq!(fd.raw, 3);
        assert_eq!(fd.path.as_deref(), Some("/usr/local/lib/libpython3.11.so.1.0"));
        assert_eq!(parse_flags(&c.args[3], MAP).unwrap(), 0x802);
        assert_eq!(parse_flags("PROT_READ|PROT_WRITE", PROT).unwrap(), 3);
        assert_eq!(parse_flags("PROT_NONE", PROT).unwrap(), 0);
        assert_eq!(
            parse_flags("MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB|21<<MAP_HUGE_SHIFT", MAP).unwrap(),
            0x22 | 0x4_0000 | (21 << 26)
        );
        assert_eq!(parse_flags("MAP_SHARED|0x1000000", MAP).unwrap(), 0x100_0001);
        assert_eq!(parse_flags("0x3e7 /* MADV_??? */", MADV).unwrap(), 999);
        assert_eq!(parse_int("0x7fffffffe790 /* 35 vars */"), Some(0x7fff_ffff_e790));
        assert_eq!(parse_fd("-1").unwrap(), FdArg { raw: u64::MAX, path: None });

        let c =
            call(p.feed(4, "10347 brk(NULL)                         = 0x555555905000").unwrap());
        assert_eq!((c.name.as_str(), c.args[0].as_str()), ("brk", "NULL"));
        let c = call(
            p.feed(
                5,
                "1 mmap(NULL, 4096, PROT_READ, MAP_SHARED, 3, 0) = -1 EACCES (Permission denied)",
            )
            .unwrap(),
        );
        assert_eq!(c.ret, Ret::Error("EACCES".into()));
        let c = call(p.feed(6, "10008 exit_group(0)                     = ?").unwrap());
        assert_eq!(c.ret, Ret::Unknown);
        let c = call(p.feed(7, "7 munlockall() = 0").unwrap());
        assert!(c.args.is_empty());
        assert_eq!(p.feed(8, "7 +++ exited with 0 +++").unwrap(), Line::Ignored);
        assert_eq!(
            p.feed(9, "7 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED} ---").unwrap(),
            Line::Ignored
        );
        assert_eq!(p.feed(10, "").unwrap(), Line::Ignored);
        // No pid column (strace without -f).
        let c = call(p.feed(11, "munmap(0x7ffff79f4000, 45443)     = 0").unwrap());
        assert_eq!((c.pid, c.args.len()), (0, 2));
    }

    #[test]
    fn execve_and_clone3() {
        let mut p = Parser::new();
        let c = call(p.feed(1, r#"9980  execve("/usr/local/bin/python3.11", ["/usr/local/bin"..., "/home/user/s,(py).py"], 0x7fffffffe790 /* 35 vars */) = 0"#).unwrap());
        assert_eq!(c.args.len(), 3);
        assert_eq!(c.args[0], "\"/usr/local/bin/python3.11\"");
        let line = "27046 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, child_tid=0x7ffff7169990, parent_tid=0x7ffff7169990, exit_signal=0, stack=0x7ffff6969000, stack_size=0x7fff80, tls=0x7ffff71696c0} => {parent_tid=[27047]}, 88) = 27047";
        let c = call(p.feed(2, line).unwrap());
        assert_eq!(c.ret, Ret::Value(27047));
        assert_eq!(c.args.len(), 2);
        let f = clone_flags(&c.args);
        assert!(f.iter().any(|x| x == "CLONE_VM"));
        assert!(f.iter().any(|x| x == "CLONE_CHILD_CLEARTID"));
        let c = call(p.feed(3, "5 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f0) = 6").unwrap());
        let f = clone_flags(&c.args);
        assert_eq!(f, ["CLONE_CHILD_CLEARTID", "CLONE_CHILD_SETTID", "SIGCHLD"]);
    }

    #[test]
    fn unfinished_and_resumed() {
        let mut p = Parser::new();
        assert_eq!(
            p.feed(1, "27049 madvise(0x7ffff6168000, 8368128, MADV_DONTNEED <unfinished ...>")
                .unwrap(),
            Line::Unfinished { pid: 27049, name: "madvise".into() }
        );
        assert!(matches!(
            p.feed(
                2,
                "27046 clone3({flags=CLONE_VM|CLONE_THREAD, stack=0x7ffff6969000} <unfinished ...>"
            )
            .unwrap(),
            Line::Unfinished { .. }
        ));
        assert_eq!(p.pending(27046).unwrap().0, "clone3");
        let c = call(p.feed(3, "27049 <... madvise resumed>)            = 0").unwrap());
        assert_eq!(c.line, 3);
        assert_eq!(c.args, ["0x7ffff6168000", "8368128", "MADV_DONTNEED"]);
        assert_eq!(c.ret, Ret::Value(0));
        let c = call(
            p.feed(4, "27046 <... clone3 resumed> => {parent_tid=[27050]}, 88) = 27050").unwrap(),
        );
        assert_eq!(c.ret, Ret::Value(27050));
        assert_eq!(c.args.len(), 2);
        assert!(clone_flags(&c.args).iter().any(|f| f == "CLONE_VM"));
        assert!(matches!(
            p.feed(5, "27048 exit(0 <unfinished ...>").unwrap(),
            Line::Unfinished { .. }
        ));
        let c = call(p.feed(6, "27048 <... exit resumed>)               = ?").unwrap());
        assert_eq!((c.args.as_slice(), &c.ret), (&["0".to_string()][..], &Ret::Unknown));
        assert_eq!(p.pending_pids().count(), 0);
    }

    #[test]
    fn no_input_panics() {
        // Every prefix of real lines, and every position replaced by awkward characters.
        let samples = [
            "27046 clone3({flags=CLONE_VM|CLONE_THREAD, stack=0x7f} => {parent_tid=[27047]}, 88) = 27047",
            "9980  mmap(NULL, 6003000, PROT_READ, MAP_PRIVATE|MAP_DENYWRITE, 3</usr/lib/x.so>, 0) = 0x7ffff7a00000",
            "27049 <... madvise resumed>)            = 0",
            "1 mmap(NULL, 4096, PROT_READ, MAP_SHARED, 3, 0) = -1 EACCES (Permission denied)",
            r#"9980  execve("/usr/bin/x", ["a\"b", "c"], 0x7ffc /* 35 vars */) = 0"#,
        ];
        for line in samples {
            let chars: Vec<char> = line.chars().collect();
            for cut in 0..=chars.len() {
                let prefix: String = chars[..cut].iter().collect();
                let mut p = Parser::new();
                let _ = p.feed(1, &prefix);
                let _ = p.feed(2, "27049 madvise(0x1, 2, MADV_DONTNEED <unfinished ...>");
                let _ = p.feed(3, &prefix);
                for sub in ['(', ')', '<', '>', '"', '\\', ',', '=', '|', 'é', ' '] {
                    let mut m = chars.clone();
                    if cut < m.len() {
                        m[cut] = sub;
                    }
                    let m: String = m.into_iter().collect();
                    if let Ok(Line::Call(c)) = Parser::new().feed(1, &m) {
                        for a in &c.args {
                            let _ = parse_flags(a, MAP);
                            let _ = parse_int(a);
                            let _ = parse_fd(a);
                        }
                        let _ = clone_flags(&c.args);
                    }
                }
            }
        }
    }

    #[test]
    fn malformed_lines_are_errors_with_line_numbers() {
        let cases = [
            "9980  mmap(NULL, 4096",
            "9980  mmap(NULL, 4096) 0x1000",
            "9980  mmap(NULL, 4096) = ",
            "9980  mmap(NULL, 4096) = zzz",
            "9980  mmap(NULL, 4096) = -1",
            "9980  mmap(NULL, 4096) = -1 enomem",
            "9980  <... mmap resumed>) = 0",
            "9980  <... mmap) = 0",
            "garbage without parentheses",
            "9980  m-map(1) = 0",
            "9980  mmap(NULL, \"unterminated) = 0",
            "9980  mmap(NULL, 4096]) = 0",
        ];
        for (i, l) in cases.iter().enumerate() {
            let mut p = Parser::new();
            let e = p.feed(i + 10, l).expect_err(l);
            assert_eq!(e.line, i + 10, "{l}");
            assert!(e.to_string().starts_with(&format!("line {}: ", i + 10)));
        }
        // A resumed call with a different name than the unfinished one.
        let mut p = Parser::new();
        p.feed(1, "5 mmap(NULL, 4096 <unfinished ...>").unwrap();
        assert!(p.feed(2, "5 <... munmap resumed>) = 0").is_err());
        assert!(parse_flags("MAP_BOGUS", MAP).is_err());
        assert!(parse_flags("", MAP).is_err());
        assert_eq!(parse_int("0x"), None);
        assert_eq!(parse_int("-1"), Some(u64::MAX));
        assert_eq!(parse_int("0755"), Some(0o755));
    }
}
