//! Prices given in code, for the meter used without a catalogue: [`Prices`].

use crate::catalog::Pricing;
use std::collections::HashMap;
use std::sync::Arc;

/// Prices for requests that reach the meter without a [`Target`](crate::context::Target):
/// one price for everything, or one per model id (the request's `model`).
///
/// ```
/// use switchyard::catalog::Pricing;
/// use switchyard::meter::Prices;
/// let prices = Prices::per_model([("gpt-4o-mini", Pricing::per_million(0.15, 0.60))]);
/// assert!(prices.for_model("gpt-4o-mini").is_some());
/// assert!(prices.for_model("gpt-4o").is_none());
/// ```
#[derive(Debug, Clone)]
pub struct Prices(Kind);

#[derive(Debug, Clone)]
enum Kind {
    Fixed(Arc<Pricing>),
    PerModel(Arc<HashMap<String, Arc<Pricing>>>),
}

impl Prices {
    /// The same price for every model.
    pub fn fixed(pricing: Pricing) -> Prices {
        Prices(Kind::Fixed(Arc::new(pricing)))
    }

    /// A price per model id; a model without one is refused, never served for free.
    pub fn per_model<'a>(prices: impl IntoIterator<Item = (&'a str, Pricing)>) -> Prices {
        let map = prices
            .into_iter()
            .map(|(m, p)| (m.to_owned(), Arc::new(p)))
            .collect();
        Prices(Kind::PerModel(Arc::new(map)))
    }

    /// The price of `model`, if it has one.
    pub fn for_model(&self, model: &str) -> Option<Arc<Pricing>> {
        match &self.0 {
            Kind::Fixed(p) => Some(Arc::clone(p)),
            Kind::PerModel(map) => map.get(model).cloned(),
        }
    }
}
