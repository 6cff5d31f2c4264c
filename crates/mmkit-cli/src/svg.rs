//! A picture of an address space as SVG, written by hand (`mmkit maps --svg`,
//! `mmkit replay --svg`).
//!
//! A real x86-64 space spans 2^47 bytes (and the vsyscall page sits near 2^64) while most
//! VMAs are a few pages, so nothing is drawn to a linear scale:
//! - VMAs are stacked top to bottom in address order (the order of `/proc/<pid>/maps`); each
//!   is a bar whose height grows with the logarithm of its size;
//! - a gap between two VMAs is a short band, also log-scaled, with a break marker (a zigzag)
//!   and its size as a label; touching VMAs are drawn touching;
//! - colour shows the backing (hue: file, anonymous, shared memory, heap, stack, special
//!   mappings such as `[vdso]`) and the permissions (shade: dark for executable, medium for
//!   writable, light for read-only, hatched for no access); shared mappings have a dashed
//!   outline;
//! - the left column gives each range, the bar its permissions and size, the right columns
//!   the file offset and the name; consecutive VMAs of one file (a library's segments) are
//!   grouped under one bracket that carries the name once;
//! - a legend explains the colours.
//!
//! Every VMA bar is a `<rect>` with class `vma` (plus its backing and permission class
//! names), and nothing else has that class, so tools (and the tests) can count them.

use std::fmt::Write as _;

use crate::maps::MapsLine;

/// The backing of a VMA, as its maps line tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file (`/path`, or another file-backed name).
    File,
    /// Private anonymous memory (no name, or `[anon:NAME]`).
    Anon,
    /// Shared memory: a file on the internal shmem mount (`00:01`: `/dev/zero (deleted)`,
    /// `/SYSV…`, `/memfd:…`) or `[anon_shmem:NAME]`.
    Shmem,
    /// `[heap]`.
    Heap,
    /// `[stack]`.
    Stack,
    /// Special mappings: `[vdso]`, `[vvar]`, `[vsyscall]`…
    Special,
}

impl Kind {
    /// Every kind, in legend order.
    pub const ALL: [Kind; 6] =
        [Kind::File, Kind::Anon, Kind::Shmem, Kind::Heap, Kind::Stack, Kind::Special];

    /// The CSS class name.
    pub fn class(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Anon => "anon",
            Kind::Shmem => "shmem",
            Kind::Heap => "heap",
            Kind::Stack => "stack",
            Kind::Special => "special",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Anon => "anonymous",
            Kind::Shmem => "shared memory",
            Kind::Heap => "[heap]",
            Kind::Stack => "[stack]",
            Kind::Special => "special ([vdso]…)",
        }
    }

    /// Fill colours: executable, writable, read-only (and no access).
    fn shades(self) -> [&'static str; 3] {
        match self {
            Kind::File => ["#1d4e89", "#4a86cf", "#b3d0f0"],
            Kind::Anon => ["#1e6b34", "#43a862", "#bfe5c9"],
            Kind::Shmem => ["#5b2a86", "#9363c6", "#dccbef"],
            Kind::Heap => ["#9a4d00", "#ef8a22", "#fbd6ad"],
            Kind::Stack => ["#9e1b32", "#d9475f", "#f5bcc6"],
            Kind::Special => ["#3f3f3f", "#7d7d7d", "#d4d4d4"],
        }
    }
}

/// The backing kind of a maps line.
pub fn kind(l: &MapsLine) -> Kind {
    let n = l.name.as_str();
    match n {
        "[heap]" => Kind::Heap,
        "[stack]" => Kind::Stack,
        "" => Kind::Anon,
        _ if n.starts_with("[anon_shmem:") => Kind::Shmem,
        _ if n.starts_with("[anon:") => Kind::Anon,
        _ if n.starts_with('[') => Kind::Special,
        _ if (l.major, l.minor) == (0, 1) || n == "/dev/zero (deleted)" => Kind::Shmem,
        _ => Kind::File,
    }
}

/// The permission class: `x` (executable), `w` (writable), `r` (read-only), `none`.
fn perm(l: &MapsLine) -> (&'static str, usize) {
    if l.exec {
        ("x", 0)
    } else if l.write {
        ("w", 1)
    } else if l.read {
        ("r", 2)
    } else {
        ("none", 2)
    }
}

fn perms_text(l: &MapsLine) -> String {
    let mut s = String::with_capacity(4);
    s.push(if l.read { 'r' } else { '-' });
    s.push(if l.write { 'w' } else { '-' });
    s.push(if l.exec { 'x' } else { '-' });
    s.push(if l.shared { 's' } else { 'p' });
    s
}

/// A byte count with a binary unit (`4 KiB`, `1.5 MiB`, `16.0 EiB`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 || (v.fract() == 0.0 && v < 1000.0) {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Text made safe for XML character data and attribute values: markup characters escaped,
/// characters XML 1.0 forbids (most controls) replaced.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// At most `max` characters of `s`, keeping the end (a path's file name) behind an ellipsis.
fn shorten(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let tail: String = s.chars().skip(n - (max - 1)).collect();
    format!("…{tail}")
}

fn log2(v: u64) -> f64 {
    (v.max(1) as f64).log2()
}

/// Height of a VMA bar: 16 px for a page, growing by 2 px per doubling, at most 56.
fn vma_height(len: u64) -> f64 {
    (16.0 + 2.0 * (log2(len) - 12.0)).clamp(16.0, 56.0)
}

/// Height of a gap band: 12 px for a page, growing by 1 px per doubling, at most 44.
fn gap_height(len: u64) -> f64 {
    (12.0 + (log2(len) - 12.0)).clamp(12.0, 44.0)
}

// Columns.
const MARGIN: f64 = 12.0;
const BAR_X: f64 = 236.0;
const BAR_W: f64 = 210.0;
const BRACKET_X: f64 = BAR_X + BAR_W + 8.0;
const DETAIL_X: f64 = BRACKET_X + 14.0;
const NAME_X: f64 = DETAIL_X + 92.0;
const WIDTH: f64 = 1200.0;
const NAME_CHARS: usize = 92;
/// The end of x86-64 user space (`TASK_SIZE_MAX` + a page: 2^47).
const USER_TOP: u64 = 1 << 47;

enum Item<'a> {
    Gap { start: u64, end: u64 },
    Vma(&'a MapsLine),
}

/// Draws the VMAs of a maps snapshot (any order; overlapping lines are drawn as given).
/// `title` names the process or file shown.
pub fn render(lines: &[MapsLine], title: &str) -> String {
    let mut vmas: Vec<&MapsLine> = lines.iter().collect();
    vmas.sort_by_key(|l| (l.start, l.end));

    // The sequence of bars and gap bands, from address 0.
    let mut items = Vec::with_capacity(vmas.len() * 2);
    let mut prev_end = 0u64;
    for l in &vmas {
        if l.start > prev_end {
            items.push(Item::Gap { start: prev_end, end: l.start });
        }
        items.push(Item::Vma(l));
        prev_end = prev_end.max(l.end);
    }

    let mapped: u64 = vmas.iter().map(|l| l.end - l.start).sum();
    let mut body = String::new();
    let mut y = 118.0;
    // Groups of consecutive VMAs of one file: (name, first y, last y).
    let mut groups: Vec<(String, f64, f64, usize)> = Vec::new();
    // The identity of the previous VMA's file: (path, device, inode).
    let mut last_file: Option<(&str, u32, u32, u64)> = None;
    for it in &items {
        match it {
            Item::Gap { start, end } => {
                let h = gap_height(end - start);
                gap(&mut body, y, h, *start, *end);
                y += h;
            }
            Item::Vma(l) => {
                let h = vma_height(l.end - l.start);
                let k = kind(l);
                bar(&mut body, l, k, y, h);
                let file = matches!(k, Kind::File | Kind::Shmem) && l.name.starts_with('/');
                let id = (l.name.as_str(), l.major, l.minor, l.inode);
                if file && last_file == Some(id) {
                    if let Some(g) = groups.last_mut() {
                        g.2 = y + h;
                        g.3 += 1;
                    }
                } else if file {
                    groups.push((l.name.clone(), y, y + h, 1));
                } else if !l.name.is_empty() {
                    // A named non-file VMA: its name beside it.
                    let _ = writeln!(
                        body,
                        r#"<text class="name" x="{NAME_X}" y="{:.1}">{}</text>"#,
                        y + h / 2.0 + 4.0,
                        escape(&shorten(&l.name, NAME_CHARS))
                    );
                } else {
                    let what = if l.shared { "(shared anonymous)" } else { "(anonymous)" };
                    let _ = writeln!(
                        body,
                        r#"<text class="name unnamed" x="{NAME_X}" y="{:.1}">{what}</text>"#,
                        y + h / 2.0 + 4.0
                    );
                }
                last_file = if file { Some(id) } else { None };
                y += h;
            }
        }
    }
    let mut bg = String::new();
    for (i, (name, top, bottom, n)) in groups.iter().enumerate() {
        let mid = (top + bottom) / 2.0;
        let _ = writeln!(
            bg,
            r#"<rect class="group-bg" x="{:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="{}"/>"#,
            MARGIN - 6.0,
            WIDTH - 2.0 * MARGIN + 12.0,
            bottom - top,
            if i % 2 == 0 { "#eaf1fb" } else { "#f3f3f3" }
        );
        if *n > 1 {
            let _ = writeln!(
                body,
                r#"<path class="bracket" d="M{bx} {t:.1} h5 V{b:.1} h-5"/>"#,
                bx = BRACKET_X,
                t = top + 2.0,
                b = bottom - 2.0
            );
        }
        // The file name in bold, then its directory and the VMA count.
        let (dir, base) = match name.rfind('/') {
            Some(i) if i + 1 < name.len() => (&name[..=i], &name[i + 1..]),
            _ => ("", name.as_str()),
        };
        let count = if *n > 1 { format!("· {n} VMAs") } else { String::new() };
        let room = NAME_CHARS.saturating_sub(base.chars().count() + count.chars().count() + 2);
        let dir = if dir.is_empty() { String::new() } else { shorten(dir, room.max(4)) };
        let _ = writeln!(
            body,
            r#"<text class="name" x="{NAME_X}" y="{:.1}"><title>{}</title><tspan class="file-name">{}</tspan><tspan class="dir" dx="8">{}</tspan><tspan class="count" dx="6">{}</tspan></text>"#,
            mid + 4.0,
            escape(name),
            escape(&shorten(base, NAME_CHARS)),
            escape(&dir),
            escape(&count)
        );
    }
    let height = y + MARGIN + 6.0;

    let mut s = String::with_capacity(body.len() + 4096);
    let _ = writeln!(s, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}">"#
    );
    let _ = writeln!(s, "<title>{}</title>", escape(title));
    s.push_str(STYLE);
    let _ = writeln!(
        s,
        r##"<rect class="background" x="0" y="0" width="{WIDTH}" height="{height:.0}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text class="title" x="{MARGIN}" y="24">{}</text>"#,
        escape(&shorten(title, 110))
    );
    let span = match (vmas.first(), vmas.last()) {
        (Some(a), Some(b)) => format!(", from {:#x} to {:#x}", a.start, b.end),
        _ => String::new(),
    };
    let _ = writeln!(
        s,
        r#"<text class="sub" x="{MARGIN}" y="42">{} VMAs, {} mapped{}. Addresses grow downwards; bar and gap heights are logarithmic in their size.</text>"#,
        vmas.len(),
        human_size(mapped),
        span
    );
    legend(&mut s);
    let _ = writeln!(
        s,
        r#"<text class="head" x="{:.1}" y="110" text-anchor="end">range</text><text class="head" x="{:.1}" y="110" text-anchor="middle">perms · size</text><text class="head" x="{DETAIL_X}" y="110">offset</text><text class="head" x="{NAME_X}" y="110">name</text>"#,
        BAR_X - 8.0,
        BAR_X + BAR_W / 2.0
    );
    s.push_str(&bg);
    s.push_str(&body);
    s.push_str("</svg>\n");
    s
}

/// Draws a maps text (as `/proc/<pid>/maps` prints it); `Err` names a malformed line.
pub fn render_maps_text(text: &str, title: &str) -> Result<String, crate::maps::MapsError> {
    Ok(render(&crate::maps::parse(text)?, title))
}

const STYLE: &str = r##"<defs>
<pattern id="hatch" patternUnits="userSpaceOnUse" width="6" height="6" patternTransform="rotate(45)"><rect x="0" y="0" width="2.2" height="6" fill="#000000" fill-opacity="0.3"/></pattern>
</defs>
<style>
text { font-family: "DejaVu Sans", Verdana, Arial, sans-serif; font-size: 11px; fill: #222222; }
.title { font-size: 16px; font-weight: bold; }
.sub { font-size: 11px; fill: #555555; }
.head { font-size: 11px; font-weight: bold; fill: #444444; }
.addr, .detail, .bar-text { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 10.5px; }
.detail { fill: #555555; }
.bar-text.dark { fill: #ffffff; }
.gap-text { font-style: italic; fill: #777777; }
.vma { stroke: #2b2b2b; stroke-width: 0.6; }
.vma.shared { stroke-dasharray: 4 2; stroke-width: 1.4; }
.break { fill: none; stroke: #999999; stroke-width: 1; }
.axis { stroke: #bbbbbb; stroke-width: 1; stroke-dasharray: 2 2; }
.bracket { fill: none; stroke: #555555; stroke-width: 1.2; }
.file-name { font-weight: bold; }
.dir { fill: #666666; }
.count { fill: #444444; }
.unnamed { fill: #999999; font-style: italic; }
</style>
"##;

fn bar(out: &mut String, l: &MapsLine, k: Kind, y: f64, h: f64) {
    let (pclass, shade) = perm(l);
    let fill = k.shades()[shade];
    let shared = if l.shared { " shared" } else { "" };
    let tip = format!(
        "{:x}-{:x} {} {:08x} {:02x}:{:02x} {} {} ({})",
        l.start,
        l.end,
        perms_text(l),
        l.offset,
        l.major,
        l.minor,
        l.inode,
        l.name,
        human_size(l.end - l.start)
    );
    let _ = writeln!(
        out,
        r#"<rect class="vma {} p-{pclass}{shared}" x="{BAR_X}" y="{y:.1}" width="{BAR_W}" height="{h:.1}" fill="{fill}"><title>{}</title></rect>"#,
        k.class(),
        escape(tip.trim_end())
    );
    if pclass == "none" {
        let _ = writeln!(
            out,
            r#"<rect class="hatch" x="{BAR_X}" y="{y:.1}" width="{BAR_W}" height="{h:.1}" fill="url(#hatch)"/>"#
        );
    }
    let ty = y + h / 2.0 + 3.8;
    let dark = if shade < 2 { " dark" } else { "" };
    let text = format!("{} · {}", perms_text(l), human_size(l.end - l.start));
    if pclass == "none" {
        // A plate under the text, which the hatching would make hard to read.
        let w = 6.4 * text.chars().count() as f64 + 8.0;
        let _ = writeln!(
            out,
            r##"<rect class="plate" x="{:.1}" y="{:.1}" width="{w:.1}" height="12" rx="2" fill="#ffffff" fill-opacity="0.9"/>"##,
            BAR_X + (BAR_W - w) / 2.0,
            ty - 9.5
        );
    }
    let _ = writeln!(
        out,
        r#"<text class="bar-text{dark}" x="{:.1}" y="{ty:.1}" text-anchor="middle">{text}</text>"#,
        BAR_X + BAR_W / 2.0
    );
    let _ = writeln!(
        out,
        r#"<text class="addr" x="{:.1}" y="{ty:.1}" text-anchor="end">{:012x}-{:012x}</text>"#,
        BAR_X - 8.0,
        l.start,
        l.end
    );
    if matches!(k, Kind::File | Kind::Shmem) && (l.offset != 0 || l.name.starts_with('/')) {
        let _ = writeln!(
            out,
            r#"<text class="detail" x="{DETAIL_X}" y="{ty:.1}">@{:#x}</text>"#,
            l.offset
        );
    }
}

fn gap(out: &mut String, y: f64, h: f64, start: u64, end: u64) {
    // The address axis continues (dashed) at both edges of the bars, cut by a zigzag.
    let mid = y + h / 2.0;
    let _ = writeln!(
        out,
        r#"<g class="gap"><path class="axis" d="M{BAR_X} {y:.1} V{b:.1} M{r} {y:.1} V{b:.1}"/>"#,
        b = y + h,
        r = BAR_X + BAR_W
    );
    let mut d = format!("M{:.1} {:.1}", BAR_X - 6.0, mid);
    let steps = 24;
    let w = (BAR_W + 12.0) / steps as f64;
    for i in 1..=steps {
        let dy = if i % 2 == 1 { -3.0 } else { 3.0 };
        let _ = write!(d, " L{:.1} {:.1}", BAR_X - 6.0 + w * i as f64, mid + dy);
    }
    let _ = writeln!(out, r#"<path class="break" d="{d}"/>"#);
    let mut label = if start == 0 {
        format!("{} unmapped from 0", human_size(end - start))
    } else {
        format!("gap {}", human_size(end - start))
    };
    if start < USER_TOP && end > USER_TOP {
        label.push_str(", across the top of user space (0x800000000000)");
    }
    let _ = writeln!(
        out,
        r#"<text class="gap-text" x="{DETAIL_X}" y="{:.1}">{}</text></g>"#,
        mid + 4.0,
        label
    );
}

fn legend(out: &mut String) {
    let mut x = MARGIN;
    let y = 56.0;
    let _ = writeln!(out, r#"<g class="legend">"#);
    let _ = writeln!(out, r#"<text class="head" x="{x}" y="{:.1}">backing:</text>"#, y + 11.0);
    x += 62.0;
    for k in Kind::ALL {
        let _ = writeln!(
            out,
            r##"<rect x="{x}" y="{y}" width="22" height="14" fill="{}" stroke="#2b2b2b" stroke-width="0.6"/><text x="{:.1}" y="{:.1}">{}</text>"##,
            k.shades()[1],
            x + 27.0,
            y + 11.0,
            escape(k.label())
        );
        x += 40.0 + 7.0 * k.label().chars().count() as f64;
    }
    let y = 78.0;
    let mut x = MARGIN;
    let _ = writeln!(out, r#"<text class="head" x="{x}" y="{:.1}">access:</text>"#, y + 11.0);
    x += 62.0;
    let shades = Kind::File.shades();
    for (i, label) in ["executable (r-x)", "writable (rw-)", "read-only (r--)", "no access (---)"]
        .iter()
        .enumerate()
    {
        let fill = shades[i.min(2)];
        let _ = writeln!(
            out,
            r##"<rect x="{x}" y="{y}" width="22" height="14" fill="{fill}" stroke="#2b2b2b" stroke-width="0.6"/>"##
        );
        if i == 3 {
            let _ = writeln!(
                out,
                r#"<rect x="{x}" y="{y}" width="22" height="14" fill="url(#hatch)"/>"#
            );
        }
        let _ = writeln!(out, r#"<text x="{:.1}" y="{:.1}">{label}</text>"#, x + 27.0, y + 11.0);
        x += 40.0 + 7.0 * label.chars().count() as f64;
    }
    let _ = writeln!(
        out,
        r##"<rect x="{x}" y="{y}" width="22" height="14" fill="#ffffff" stroke="#2b2b2b" stroke-width="1.4" stroke-dasharray="4 2"/><text x="{:.1}" y="{:.1}">shared (s)</text>"##,
        x + 27.0,
        y + 11.0
    );
    let _ = writeln!(out, "</g>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps;

    #[test]
    fn sizes_and_escaping() {
        assert_eq!(human_size(4096), "4 KiB");
        assert_eq!(human_size(0x21000), "132 KiB");
        assert_eq!(human_size(3 << 19), "1.5 MiB");
        assert_eq!(human_size(u64::MAX), "16 EiB");
        assert_eq!(human_size(0xffff_ffff_ff60_0000 - 0x7fff_ffff_f000), "16.0 EiB");
        assert_eq!(escape("a<b>&\"c'\u{1}"), "a&lt;b&gt;&amp;&quot;c&apos;\u{fffd}");
        assert_eq!(shorten("/usr/lib/libc.so.6", 8), "…bc.so.6");
        assert_eq!(shorten("/usr/lib/libc.so.6", 0), "");
        assert_eq!(shorten("libc", 4), "libc");
    }

    #[test]
    fn kinds_from_maps_lines() {
        let text = "\
555555554000-555555556000 r--p 00000000 fe:00 12 /usr/bin/x
555555556000-555555557000 rw-p 00000000 00:00 0 [heap]
7ffff7dc6000-7ffff7dca000 rw-s 00000000 00:01 3434 /dev/zero (deleted)
7ffff7dca000-7ffff7dcb000 rw-p 00000000 00:00 0 [anon:glibc]
7ffff7fc1000-7ffff7fc5000 r--p 00000000 00:00 0 [vvar]
7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0 [stack]
";
        let l = maps::parse(text).unwrap();
        let k: Vec<Kind> = l.iter().map(kind).collect();
        assert_eq!(
            k,
            [Kind::File, Kind::Heap, Kind::Shmem, Kind::Anon, Kind::Special, Kind::Stack]
        );
        let svg = render(&l, "t <&>");
        assert_eq!(svg.matches("<rect class=\"vma ").count(), 6);
        assert!(svg.contains("t &lt;&amp;&gt;"));
    }

    #[test]
    fn empty_space_still_draws() {
        let svg = render(&[], "empty");
        assert!(svg.contains("0 VMAs"));
        assert!(svg.ends_with("</svg>\n"));
    }
}
