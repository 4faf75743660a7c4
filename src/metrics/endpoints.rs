//! Per-endpoint health gauges, read from the [`Health`] registry at scrape time: whether each
//! enabled endpoint is in an outage (what balance avoids) or cooling down after a 429 (what
//! fallback skips). Nothing is recorded for them: the registry already holds the state, and a
//! gauge computed on scrape can never drift from what routing sees.

use super::generation::series;
use super::header;
use crate::catalog::Catalog;
use crate::health::Health;
use std::fmt::Write as _;

/// Appends `switchyard_endpoint_outage` and `switchyard_endpoint_cooling_down` (1 or 0) for
/// every enabled endpoint of `catalog`, labelled by model and endpoint tag.
pub fn render_endpoint_health(catalog: &Catalog, health: &Health, out: &mut String) {
    for (name, help, state) in [
        (
            "switchyard_endpoint_outage",
            "1 while the endpoint had a significant outage in the health window (balance \
             avoids it), else 0.",
            Health::is_unstable as fn(&Health, &str) -> bool,
        ),
        (
            "switchyard_endpoint_cooling_down",
            "1 while the endpoint is cooling down after a 429 (fallback skips it), else 0.",
            Health::cooling_down,
        ),
    ] {
        header(out, name, "gauge", help);
        for model in catalog.models() {
            for (_, e) in model.enabled_endpoints() {
                series(out, name, &[("model", &model.slug), ("provider", &e.tag)]);
                let _ = writeln!(out, " {}", u8::from(state(health, &e.key)));
            }
        }
    }
}
