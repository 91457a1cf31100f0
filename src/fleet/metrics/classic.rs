//! The classic Prometheus text format (`text/plain; version=0.0.4`), made from the
//! `OpenMetrics` text `prometheus-client` encodes. Scrapers that do not ask for `OpenMetrics`
//! get this, as the reference client libraries do; and in it every series has its HELP and
//! TYPE (in `OpenMetrics` a counter family `x` has samples `x_total`, which a classic parser
//! such as `promtool check metrics` sees as a series with no HELP).

use std::fmt::Write as _;

/// Appends the classic form of `openmetrics` to `out`.
pub fn from_openmetrics(openmetrics: &str, out: &mut String) {
    let mut help: Option<(&str, &str)> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = rest.split_once(' ').or(Some((rest, "")));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (family, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (name, kind) = match kind {
                "counter" => (format!("{family}_total"), "counter"),
                "info" => (format!("{family}_info"), "gauge"),
                "gauge" | "stateset" | "gaugehistogram" => (family.to_string(), "gauge"),
                "histogram" => (family.to_string(), "histogram"),
                "summary" => (family.to_string(), "summary"),
                _ => (family.to_string(), "untyped"),
            };
            if let Some((_, text)) = help.take().filter(|(h, _)| *h == family) {
                // OpenMetrics escapes `"` in HELP; the classic format does not.
                let text = text.replace("\\\"", "\"");
                let _ = writeln!(out, "# HELP {name} {text}");
            }
            let _ = writeln!(out, "# TYPE {name} {kind}");
        } else if line.starts_with("# ") {
            // `# UNIT` and `# EOF` have no classic form.
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_get_their_total_name_units_and_eof_go() {
        let open = "# HELP corral_exits Worker exits\n# TYPE corral_exits counter\n\
                    corral_exits_total{group=\"web\"} 3\n# HELP corral_up Up \\\"now\\\"\n\
                    # TYPE corral_up gauge\n# UNIT corral_up seconds\ncorral_up 1\n# EOF\n";
        let mut out = String::new();
        from_openmetrics(open, &mut out);
        assert_eq!(
            out,
            "# HELP corral_exits_total Worker exits\n# TYPE corral_exits_total counter\n\
             corral_exits_total{group=\"web\"} 3\n# HELP corral_up Up \"now\"\n\
             # TYPE corral_up gauge\ncorral_up 1\n"
        );
    }
}
