//! ODE integrators with gradients (in progress).
