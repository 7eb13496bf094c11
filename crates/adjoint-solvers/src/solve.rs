//! Iterative linear solvers, roots, fixed points and optimisation layers with implicit
//! gradients (in progress).
