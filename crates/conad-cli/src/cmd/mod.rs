//! One module per subcommand (plus the pieces they share).
pub mod data;
pub mod embed;
pub mod eval;
pub mod fit;
pub mod ke;
pub mod methods;
pub mod metrics;
pub mod score;
pub mod score_embeddings;
pub mod scorer_args;
pub mod train;
