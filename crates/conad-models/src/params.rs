//! Trainable parameters of a [`VarMap`], in a deterministic order.
//!
//! candle-nn's batch norm registers `running_mean` / `running_var` as `VarMap` variables, so
//! `VarMap::all_vars()` hands them to an optimizer. candle's own optimizers skip
//! them because they receive no gradient, but weight decay or gradient-norm code that iterates over
//! all variables must not touch them. `all_vars()` also iterates a `HashMap` in random order;
//! anything order-dependent (optimizer state layout, float sums over parameters) needs the sorted
//! order returned here.

use candle_core::Var;
use candle_nn::VarMap;

/// Whether a variable name is a batch-norm running statistic (not trained by gradient descent).
pub fn is_running_statistic(name: &str) -> bool {
    name.ends_with("running_mean") || name.ends_with("running_var")
}

/// `(name, variable)` for every trainable variable (running statistics excluded), sorted by name.
pub fn named_trainable_vars(varmap: &VarMap) -> Vec<(String, Var)> {
    let vars = varmap
        .data()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut out: Vec<(String, Var)> = vars
        .iter()
        .filter(|(n, _)| !is_running_statistic(n))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Trainable variables (running statistics excluded), sorted by name — pass these to an optimizer.
pub fn trainable_vars(varmap: &VarMap) -> Vec<Var> {
    named_trainable_vars(varmap)
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}
