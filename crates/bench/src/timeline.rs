//! Where a sequential turn's own time goes: the turn laid out on the stand-ins' clock, one gap per hand-off.
//!
//! Every upstream request of a turn is answered by a stand-in that records when it arrived and how long it
//! took; between two of them (and before the first, after the last) the time is the function's, plus
//! loopback and the client's HTTP work. The gap before `tools/list`, say, is what the function spends from the
//! end of the `initialized` response to the arrival of its next request.

use std::time::{Duration, Instant};

use devstack::Stack;

use crate::report::{ms, percentile};

/// One upstream request on the timeline.
struct Span {
    label: String,
    arrived: Instant,
    ended: Instant,
}

/// The median gap at each hand-off of a turn, in order, over the turns whose requests came in the same
/// sequence as the first one's (all of them, for a scripted tool turn). `turns` holds each turn's send
/// instant and wall time.
pub fn gaps(stack: &Stack, turns: &[(Instant, Duration)]) -> Vec<(String, Duration)> {
    let mut spans: Vec<Span> = stack
        .mcp
        .served()
        .into_iter()
        .map(|s| Span { label: s.method, arrived: s.arrived, ended: s.arrived + s.elapsed })
        .chain(stack.dashscope.requests().iter().map(|r| Span {
            label: "model".to_owned(),
            arrived: r.arrived,
            ended: r.arrived + r.elapsed.unwrap_or_default(),
        }))
        .collect();
    spans.sort_by_key(|span| span.arrived);

    let mut sequence: Option<Vec<String>> = None;
    let mut columns: Vec<Vec<Duration>> = Vec::new();
    for &(began, wall) in turns {
        let ended = began + wall;
        let inside: Vec<&Span> = spans.iter().filter(|s| s.arrived >= began && s.ended <= ended).collect();
        let Some(first) = inside.first() else { continue };
        let labels = hand_offs(&inside);
        if *sequence.get_or_insert_with(|| labels.clone()) != labels {
            continue;
        }
        let mut row = vec![first.arrived.saturating_duration_since(began)];
        row.extend(inside.windows(2).map(|pair| pair[1].arrived.saturating_duration_since(pair[0].ended)));
        row.push(ended.saturating_duration_since(inside[inside.len() - 1].ended));
        columns.resize(row.len(), Vec::new());
        for (column, gap) in columns.iter_mut().zip(row) {
            column.push(gap);
        }
    }
    let Some(labels) = sequence else { return Vec::new() };
    labels
        .into_iter()
        .zip(columns)
        .map(|(label, mut column)| {
            column.sort();
            (label, percentile(&column, 50.0))
        })
        .collect()
}

/// "request → initialize", "initialize → notifications/initialized", …, "model → last byte".
fn hand_offs(spans: &[&Span]) -> Vec<String> {
    let mut labels = vec![format!("request → {}", spans[0].label)];
    labels.extend(spans.windows(2).map(|pair| format!("{} → {}", pair[0].label, pair[1].label)));
    labels.push(format!("{} → last byte", spans[spans.len() - 1].label));
    labels
}

/// One line for the report: each hand-off's median and their sum.
pub fn describe(gaps: &[(String, Duration)]) -> String {
    let total: Duration = gaps.iter().map(|(_, gap)| *gap).sum();
    let parts: Vec<String> = gaps.iter().map(|(label, gap)| format!("{label} {}", ms(*gap))).collect();
    format!("Own time of a sequential turn by hand-off (medians, sum {}): {}.", ms(total), parts.join("; "))
}
