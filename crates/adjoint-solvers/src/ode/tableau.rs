//! Butcher tableaus of the explicit Runge–Kutta methods and their dense-output polynomials.
//!
//! - Dormand–Prince 5(4) with SciPy's `RK45` coefficients and its 4th-order interpolant
//!   (SciPy's `P` matrix);
//! - Tsitouras 5(4) (Tsitouras 2011, as in OrdinaryDiffEq.jl / diffrax) with its 4th-order
//!   interpolant;
//! - the classic 4-stage RK4 with its free 3rd-order continuous extension.
//!
//! Stages are `k_i = f(t + c_i h, y + h Σ_j a_ij k_j)`; the step is `y + h Σ b_i k_i`; for the
//! adaptive pairs `e` has one more entry than the stages (the FSAL stage `f(t + h, y_new)`) and
//! the error estimate is `h Σ e_i k_i`.

// Coefficients are written as published, beyond f64's precision.
#![allow(clippy::excessive_precision)]

/// A Runge–Kutta method's coefficients.
pub(crate) struct Tableau {
    pub c: &'static [f64],
    pub a: &'static [&'static [f64]],
    pub b: &'static [f64],
    /// Error weights (adaptive methods), one per stage plus the FSAL stage.
    pub e: &'static [f64],
    /// `θ ↦ w_i(θ)` with `y(t + θh) = y + h Σ w_i(θ) k_i` (the FSAL stage last, when any).
    pub dense: fn(f64) -> [f64; 7],
}

pub(crate) const DOPRI5: Tableau = Tableau {
    c: &[0.0, 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0],
    a: &[
        &[],
        &[1.0 / 5.0],
        &[3.0 / 40.0, 9.0 / 40.0],
        &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
        &[19372.0 / 6561.0, -25360.0 / 2187.0, 64448.0 / 6561.0, -212.0 / 729.0],
        &[9017.0 / 3168.0, -355.0 / 33.0, 46732.0 / 5247.0, 49.0 / 176.0, -5103.0 / 18656.0],
    ],
    b: &[35.0 / 384.0, 0.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0],
    e: &[-71.0 / 57600.0, 0.0, 71.0 / 16695.0, -71.0 / 1920.0, 17253.0 / 339200.0, -22.0 / 525.0, 1.0 / 40.0],
    dense: dopri5_dense,
};

/// SciPy's `RK45.P`: `w_i(θ) = Σ_j P[i][j] θ^(j+1)`.
const DOPRI5_P: [[f64; 4]; 7] = [
    [1.0, -8048581381.0 / 2820520608.0, 8663915743.0 / 2820520608.0, -12715105075.0 / 11282082432.0],
    [0.0, 0.0, 0.0, 0.0],
    [0.0, 131558114200.0 / 32700410799.0, -68118460800.0 / 10900136933.0, 87487479700.0 / 32700410799.0],
    [0.0, -1754552775.0 / 470086768.0, 14199869525.0 / 1410260304.0, -10690763975.0 / 1880347072.0],
    [0.0, 127303824393.0 / 49829197408.0, -318862633887.0 / 49829197408.0, 701980252875.0 / 199316789632.0],
    [0.0, -282668133.0 / 205662961.0, 2019193451.0 / 616988883.0, -1453857185.0 / 822651844.0],
    [0.0, 40617522.0 / 29380423.0, -110615467.0 / 29380423.0, 69997945.0 / 29380423.0],
];

fn dopri5_dense(th: f64) -> [f64; 7] {
    let pw = [th, th * th, th * th * th, th * th * th * th];
    let mut w = [0.0; 7];
    for (wi, p) in w.iter_mut().zip(DOPRI5_P.iter()) {
        *wi = p.iter().zip(pw).map(|(a, b)| a * b).sum();
    }
    w
}

pub(crate) const TSIT5: Tableau = Tableau {
    c: &[0.0, 0.161, 0.327, 0.9, 0.980_025_540_904_509_7, 1.0],
    a: &[
        &[],
        &[0.161],
        &[-0.008_480_655_492_356_989, 0.335_480_655_492_357],
        &[2.897_153_057_105_493, -6.359_448_489_975_075, 4.362_295_432_869_581_5],
        &[5.325_864_828_439_257, -11.748_883_564_062_828, 7.495_539_342_889_836_5, -0.092_495_066_361_755_25],
        &[
            5.861_455_442_946_42,
            -12.920_969_317_847_11,
            8.159_367_898_576_159,
            -0.071_584_973_281_401,
            -0.028_269_050_394_068_383,
        ],
    ],
    b: &[
        0.096_460_766_818_065_23,
        0.01,
        0.479_889_650_414_499_6,
        1.379_008_574_103_742,
        -3.290_069_515_436_081,
        2.324_710_524_099_774,
    ],
    e: &[
        -0.001_780_011_052_225_777_1,
        -0.000_816_434_459_656_746_9,
        0.007_880_878_010_261_995,
        -0.144_711_007_173_262_9,
        0.582_357_165_452_555_2,
        -0.458_082_105_929_186_97,
        1.0 / 66.0,
    ],
    dense: tsit5_dense,
};

fn tsit5_dense(t: f64) -> [f64; 7] {
    let t2 = t * t;
    [
        -1.053_088_497_729_021_6
            * t
            * (t - 1.329_989_018_975_141_2)
            * (t2 - 1.436_402_854_171_635_1 * t + 0.713_981_691_707_420_9),
        0.1017 * t2 * (t2 - 2.196_656_833_824_975_4 * t + 1.294_985_250_737_463_1),
        2.490_627_285_651_252_8 * t2 * (t2 - 2.385_356_454_720_616_6 * t + 1.578_034_682_080_924_9),
        -16.548_102_889_244_903 * (t - 1.217_129_272_955_332_4) * (t - 0.616_204_060_378_000_9) * t2,
        47.379_521_962_819_28 * (t - 1.203_071_208_372_362_6) * (t - 0.658_047_292_653_547_4) * t2,
        -34.870_657_861_496_61 * (t - 1.2) * (t - 2.0 / 3.0) * t2,
        2.5 * (t - 1.0) * (t - 0.6) * t2,
    ]
}

pub(crate) const RK4: Tableau = Tableau {
    c: &[0.0, 0.5, 0.5, 1.0],
    a: &[&[], &[0.5], &[0.0, 0.5], &[0.0, 0.0, 1.0]],
    b: &[1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0],
    e: &[],
    dense: rk4_dense,
};

fn rk4_dense(t: f64) -> [f64; 7] {
    let (t2, t3) = (t * t, t * t * t);
    let mid = t2 - 2.0 * t3 / 3.0;
    [t - 1.5 * t2 + 2.0 * t3 / 3.0, mid, mid, -0.5 * t2 + 2.0 * t3 / 3.0, 0.0, 0.0, 0.0]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Row sums equal `c`, weights sum to 1, error weights to 0, and the interpolants end at
    /// the step's weights.
    #[test]
    fn consistent() {
        for tab in [&DOPRI5, &TSIT5, &RK4] {
            for (ci, row) in tab.c.iter().zip(tab.a) {
                assert!((row.iter().sum::<f64>() - ci).abs() < 1e-12);
            }
            assert!((tab.b.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            assert!(tab.e.iter().sum::<f64>().abs() < 1e-12);
            let w1 = (tab.dense)(1.0);
            for (i, b) in tab.b.iter().enumerate() {
                assert!((w1[i] - b).abs() < 1e-9, "{i}: {} vs {b}", w1[i]);
            }
            assert!((tab.dense)(0.0).iter().all(|w| *w == 0.0));
        }
    }
}
