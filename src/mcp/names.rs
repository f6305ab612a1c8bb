//! Model-facing tool names: OpenAI-style function names must match `^[A-Za-z0-9_-]{1,64}$` and be unique
//! across all servers of a turn, while MCP allows dots, slashes and 128 characters per server.

use std::collections::HashSet;

const MAX_LEN: usize = 64;

/// Replaces every character the model API refuses with `_` and cuts to 64 characters.
pub(crate) fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' })
        .take(MAX_LEN)
        .collect();
    if out.is_empty() {
        out.push_str("tool");
    }
    out
}

/// Hands out unique model-facing names. The first tool to claim a sanitized name keeps it; later ones get
/// `_<server index>` (and `_<n>` if that is taken too), so the common single-server case stays unchanged.
#[derive(Default)]
pub(crate) struct NameAllocator {
    taken: HashSet<String>,
}

impl NameAllocator {
    pub(crate) fn allocate(&mut self, server_index: usize, original: &str) -> String {
        let base = sanitize(original);
        if self.taken.insert(base.clone()) {
            return base;
        }
        let mut attempt = 1usize;
        loop {
            let suffix = if attempt == 1 { format!("_{server_index}") } else { format!("_{server_index}_{attempt}") };
            let keep = MAX_LEN.saturating_sub(suffix.len());
            // `base` is ASCII, so byte slicing is on a char boundary.
            let candidate = format!("{}{suffix}", &base[..base.len().min(keep)]);
            if self.taken.insert(candidate.clone()) {
                return candidate;
            }
            attempt += 1;
        }
    }
}

/// Path segments that name a transport, not a server (`…/github/mcp`, `…/github/sse`).
const TRANSPORT_SEGMENTS: [&str; 2] = ["mcp", "sse"];

/// Each server's label, in server order: what the Responses face shows as `server_label`. AI Gateway's
/// endpoints are `…/mcp-servers/<name>`, so a server's label is its URL's last path segment that is not a
/// transport name, else its last segment, else its host — model-safe and unique like tool names. Only the
/// path and host are read: logs show them too, while the query (which may carry a key) is never used.
pub(crate) fn server_labels<'a>(urls: impl IntoIterator<Item = &'a reqwest::Url>) -> Vec<String> {
    let mut labels = NameAllocator::default();
    urls.into_iter()
        .enumerate()
        .map(|(index, url)| {
            let segments: Vec<&str> = url.path_segments().into_iter().flatten().filter(|s| !s.is_empty()).collect();
            let named = segments.iter().rev().find(|s| !TRANSPORT_SEGMENTS.contains(&s.to_ascii_lowercase().as_str()));
            let base = named.or(segments.last()).copied().unwrap_or_else(|| url.host_str().unwrap_or_default());
            labels.allocate(index, base)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(name: &str) -> bool {
        (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }

    #[test]
    fn sanitize_replaces_and_truncates() {
        assert_eq!(sanitize("my.tools/get time"), "my_tools_get_time");
        assert_eq!(sanitize(""), "tool");
        assert_eq!(sanitize("日本"), "__");
        assert_eq!(sanitize(&"x".repeat(100)).len(), 64);
    }

    #[test]
    fn collisions_get_server_suffixes_and_stay_valid() {
        let mut names = NameAllocator::default();
        assert_eq!(names.allocate(0, "echo"), "echo");
        assert_eq!(names.allocate(1, "echo"), "echo_1");
        assert_eq!(names.allocate(0, "echo_1"), "echo_1_0");
        assert_eq!(names.allocate(1, "e.cho"), "e_cho");
        assert_eq!(names.allocate(1, "e/cho"), "e_cho_1");
        assert_eq!(names.allocate(1, "e cho"), "e_cho_1_2");
        let long = "y".repeat(80);
        let a = names.allocate(0, &long);
        let b = names.allocate(3, &long);
        assert!(valid(&a) && valid(&b) && a != b, "{a} {b}");
    }

    #[test]
    fn server_labels_name_the_gateway_server_and_stay_unique() {
        let urls: Vec<reqwest::Url> = [
            "https://gw.example.com/mcp-servers/time?key=SECRET",
            "https://gw.example.com/mcp-servers/time/",
            "http://127.0.0.1:9000/mcp",
            "https://tools.example.com/github/sse",
            "https://tools.example.com/",
        ]
        .iter()
        .map(|u| reqwest::Url::parse(u).unwrap())
        .collect();
        assert_eq!(server_labels(&urls), ["time", "time_1", "mcp", "github", "tools_example_com"]);
    }
}
