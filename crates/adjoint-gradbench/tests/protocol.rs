//! Drives the `adjoint-gradbench` binary through GradBench's protocol on small inputs made
//! here, and checks every derivative it returns against central finite differences of the
//! primal it also returns (GradBench itself is not needed).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{json, Value};

struct Tool {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    id: u64,
}

impl Tool {
    fn start() -> Tool {
        let mut child = Command::new(env!("CARGO_BIN_EXE_adjoint-gradbench"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start adjoint-gradbench");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut t = Tool { child, stdin, stdout, id: 0 };
        let r = t.send(json!({"kind": "start", "eval": "test"}));
        assert_eq!(r["tool"], "adjoint");
        t
    }

    fn send(&mut self, mut msg: Value) -> Value {
        msg["id"] = json!(self.id);
        writeln!(self.stdin, "{msg}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let r: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad response {line:?}: {e}"));
        assert_eq!(r["id"], json!(self.id), "response id");
        self.id += 1;
        r
    }

    fn define(&mut self, module: &str) {
        let r = self.send(json!({"kind": "define", "module": module}));
        assert_eq!(r["success"], true, "define {module}: {r}");
    }

    /// Evaluate and return the output; checks the timing entries.
    fn eval(&mut self, module: &str, function: &str, mut input: Value) -> Value {
        input["min_runs"] = json!(2);
        input["min_seconds"] = json!(0.0);
        let r =
            self.send(json!({"kind": "evaluate", "module": module, "function": function, "input": input}));
        assert_eq!(r["success"], true, "{module}.{function}: {r}");
        let timings = r["timings"].as_array().expect("timings");
        assert!(timings.len() >= 2, "min_runs = 2 must give two timings: {timings:?}");
        assert!(timings.iter().all(|t| t["name"] == "evaluate" && t["nanoseconds"].is_u64()));
        r["output"].clone()
    }
}

impl Drop for Tool {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}")).iter().map(|x| x.as_f64().unwrap()).collect()
}

/// Deterministic pseudo-random numbers in [0, 1).
fn rand(seed: u64, n: usize) -> Vec<f64> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

/// Central differences of `f` at `x`, one coordinate at a time.
fn fd(mut f: impl FnMut(&[f64]) -> f64, x: &[f64], h: f64) -> Vec<f64> {
    (0..x.len())
        .map(|i| {
            let mut xp = x.to_vec();
            let mut xm = x.to_vec();
            xp[i] += h;
            xm[i] -= h;
            (f(&xp) - f(&xm)) / (2.0 * h)
        })
        .collect()
}

fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(close(*g, *w, tol), "{what}[{i}]: AD {g} vs finite differences {w}");
    }
}

#[test]
fn protocol_messages_and_errors() {
    let mut t = Tool::start();
    let r = t.send(json!({"kind": "define", "module": "no-such-eval"}));
    assert_eq!(r["success"], false);
    t.define("hello");
    let r = t.send(json!({"kind": "evaluate", "module": "hello", "function": "square", "input": 3.0}));
    assert_eq!(r["output"], 9.0);
    let r = t.send(json!({"kind": "evaluate", "module": "hello", "function": "double", "input": 9.0}));
    assert_eq!(r["output"], 18.0);
    let r = t.send(json!({"kind": "analysis", "of": 2, "valid": true}));
    assert_eq!(r.as_object().unwrap().len(), 1, "analysis is acknowledged with the id only: {r}");
    let r = t.send(json!({"kind": "evaluate", "module": "lse", "function": "primal", "input": {"y": 1}}));
    assert_eq!(r["success"], false);
    assert!(r["error"].as_str().unwrap().contains("lse"), "{r}");
    let r = t.send(json!({"kind": "evaluate", "module": "lse", "function": "nope", "input": {"x": [1.0]}}));
    assert_eq!(r["success"], false);
    let r = t.send(json!({"kind": "evaluate", "module": "det", "function": "primal", "input": {"A": [1.0, 2.0], "ell": 2}}));
    assert_eq!(r["success"], false, "wrong-size matrix is an error, not a crash: {r}");
    // Still alive after the errors.
    let r = t.send(json!({"kind": "evaluate", "module": "hello", "function": "square", "input": 2.0}));
    assert_eq!(r["output"], 4.0);
}

#[test]
fn lse_llsq_det_gradients_match_finite_differences() {
    let mut t = Tool::start();
    t.define("lse");
    let x: Vec<f64> = rand(1, 6).iter().map(|v| 4.0 * v - 2.0).collect();
    let g = f64s(&t.eval("lse", "gradient", json!({"x": x})));
    let want = fd(|x| t.eval("lse", "primal", json!({"x": x})).as_f64().unwrap(), &x, 1e-5);
    assert_close("lse", &g, &want, 1e-7);

    t.define("llsq");
    let x = rand(2, 4);
    let g = f64s(&t.eval("llsq", "gradient", json!({"x": x, "n": 7})));
    let want = fd(|x| t.eval("llsq", "primal", json!({"x": x, "n": 7})).as_f64().unwrap(), &x, 1e-5);
    assert_close("llsq", &g, &want, 1e-7);

    t.define("det");
    let a = rand(3, 16);
    let g = f64s(&t.eval("det", "gradient", json!({"A": a, "ell": 4})));
    let want = fd(|a| t.eval("det", "primal", json!({"A": a, "ell": 4})).as_f64().unwrap(), &a, 1e-5);
    assert_close("det", &g, &want, 1e-7);
}

/// At ℓ = 9 the gradient preaccumulates 7 × 7 minors two levels down; Jacobi's formula
/// ∇det(A) = det(A)·A⁻ᵀ (the inverse by Gauss–Jordan elimination here) checks every entry.
#[test]
fn det_gradient_is_the_cofactor_matrix() {
    let n = 9;
    let a: Vec<f64> = rand(11, n * n).iter().map(|v| 2.0 * v - 1.0).collect();
    let mut t = Tool::start();
    t.define("det");
    let g = f64s(&t.eval("det", "gradient", json!({"A": a, "ell": n})));
    // Gauss–Jordan with partial pivoting on [A | I], tracking the determinant.
    let mut m: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            (0..2 * n).map(|j| if j < n { a[i * n + j] } else { f64::from(u8::from(j - n == i)) }).collect()
        })
        .collect();
    let mut det = 1.0;
    for col in 0..n {
        let p = (col..n).max_by(|&x, &y| m[x][col].abs().total_cmp(&m[y][col].abs())).unwrap();
        if p != col {
            m.swap(p, col);
            det = -det;
        }
        let d = m[col][col];
        det *= d;
        m[col].iter_mut().for_each(|v| *v /= d);
        for r in 0..n {
            if r != col {
                let f = m[r][col];
                let pivot = m[col].clone();
                m[r].iter_mut().zip(&pivot).for_each(|(v, p)| *v -= f * p);
            }
        }
    }
    let primal = t.eval("det", "primal", json!({"A": a, "ell": n})).as_f64().unwrap();
    assert!(close(primal, det, 1e-10), "det {primal} vs elimination {det}");
    // (A⁻ᵀ)ᵢⱼ = (A⁻¹)ⱼᵢ.
    let want: Vec<f64> = (0..n * n).map(|k| det * m[k % n][n + k / n]).collect();
    assert_close("det ℓ = 9", &g, &want, 1e-9);
}

#[test]
fn ode_gradient_matches_finite_differences() {
    let mut t = Tool::start();
    t.define("ode");
    let x = rand(4, 5);
    // The gradient is that of the continuous solution (whatever `s`): compare with differences
    // of the primal at many steps, where RK4's error is negligible.
    let g = f64s(&t.eval("ode", "gradient", json!({"x": x, "s": 3})));
    let want = fd(|x| *f64s(&t.eval("ode", "primal", json!({"x": x, "s": 1000}))).last().unwrap(), &x, 1e-5);
    assert_close("ode", &g, &want, 1e-7);
}

#[test]
fn kmeans_dir_is_gradient_over_hessian_diagonal() {
    let mut t = Tool::start();
    t.define("kmeans");
    let (n, k, d) = (12, 3, 2);
    let pts = rand(5, n * d);
    let points: Vec<Vec<f64>> = pts.chunks(d).map(<[f64]>::to_vec).collect();
    let centroids = points[n - k..].to_vec();
    let c0: Vec<f64> = centroids.concat();
    let cost = |t: &mut Tool, c: &[f64]| {
        let cs: Vec<Vec<f64>> = c.chunks(d).map(<[f64]>::to_vec).collect();
        t.eval("kmeans", "cost", json!({"points": points, "centroids": cs})).as_f64().unwrap()
    };
    let dir: Vec<f64> = t
        .eval("kmeans", "dir", json!({"points": points, "centroids": centroids}))
        .as_array()
        .unwrap()
        .iter()
        .flat_map(f64s)
        .collect();
    let f0 = cost(&mut t, &c0);
    let h = 1e-4;
    for i in 0..k * d {
        let (mut cp, mut cm) = (c0.clone(), c0.clone());
        cp[i] += h;
        cm[i] -= h;
        let (fp, fm) = (cost(&mut t, &cp), cost(&mut t, &cm));
        let j = (fp - fm) / (2.0 * h);
        let hd = (fp - 2.0 * f0 + fm) / (h * h);
        assert!(close(dir[i], j / hd, 1e-4), "dir[{i}]: AD {} vs finite differences {}", dir[i], j / hd);
    }
}

fn gmm_input(d: usize, k: usize, n: usize, params: &[f64]) -> Value {
    let ld = d * (d - 1) / 2;
    let (alpha, rest) = params.split_at(k);
    let (mu, rest) = rest.split_at(k * d);
    let (q, l) = rest.split_at(k * d);
    let rows = |v: &[f64], w: usize| v.chunks(w.max(1)).map(<[f64]>::to_vec).collect::<Vec<_>>();
    let x: Vec<f64> = rand(7, n * d).iter().map(|v| 2.0 * v - 1.0).collect();
    json!({"d": d, "k": k, "n": n, "m": 1, "gamma": 1.5, "alpha": alpha, "mu": rows(mu, d), "q": rows(q, d),
           "l": rows(l, ld), "x": rows(&x, d)})
}

#[test]
fn gmm_gradient_matches_finite_differences() {
    let mut t = Tool::start();
    t.define("gmm");
    let (d, k, n) = (3, 2, 5);
    let ld = d * (d - 1) / 2;
    let p: Vec<f64> = rand(6, k + 2 * k * d + k * ld).iter().map(|v| v - 0.5).collect();
    let out = t.eval("gmm", "jacobian", gmm_input(d, k, n, &p));
    let flat = |v: &Value| -> Vec<f64> { v.as_array().unwrap().iter().flat_map(f64s).collect() };
    let g: Vec<f64> = [f64s(&out["alpha"]), flat(&out["mu"]), flat(&out["q"]), flat(&out["l"])].concat();
    let want = fd(|p| t.eval("gmm", "objective", gmm_input(d, k, n, p)).as_f64().unwrap(), &p, 1e-5);
    assert_close("gmm", &g, &want, 1e-6);
}

fn lstm_input(l: usize, b: usize, c: usize, params: &[f64]) -> Value {
    let rows = |v: &[f64], w: usize| v.chunks(w).map(<[f64]>::to_vec).collect::<Vec<_>>();
    let (main, extra) = params.split_at(2 * l * 4 * b);
    let state = rand(8, 2 * l * b);
    let seq: Vec<f64> = rand(9, c * b).iter().map(|v| (v * 2.0).floor()).collect();
    json!({"main_params": rows(main, 4 * b), "extra_params": rows(extra, b), "state": rows(&state, b),
           "sequence": rows(&seq, b)})
}

#[test]
fn lstm_gradient_matches_finite_differences() {
    let mut t = Tool::start();
    t.define("lstm");
    let (l, b, c) = (2, 3, 4);
    let p = rand(10, 2 * l * 4 * b + 3 * b);
    let g = f64s(&t.eval("lstm", "jacobian", lstm_input(l, b, c, &p)));
    let want = fd(|p| t.eval("lstm", "objective", lstm_input(l, b, c, p)).as_f64().unwrap(), &p, 1e-5);
    assert_close("lstm", &g, &want, 1e-7);
}

#[test]
fn ba_jacobian_blocks_match_finite_differences() {
    let mut t = Tool::start();
    t.define("ba");
    let cam = vec![0.1, -0.2, 0.3, 1.0, 2.0, -3.0, 500.0, 10.0, -5.0, 1e-3, 1e-5];
    let x = vec![0.5, -0.4, 4.0];
    let feat = vec![-10.0, 20.0];
    let input = |cam: &[f64], x: &[f64], w: f64| json!({"n": 2, "m": 3, "p": 15, "cam": cam, "x": x, "w": w, "feat": feat});
    let jac = t.eval("ba", "jacobian", input(&cam, &x, 0.8));
    let vals = f64s(&jac["vals"]);
    let rows = f64s(&jac["rows"]);
    let cols = f64s(&jac["cols"]);
    assert_eq!((vals.len(), rows.len(), cols.len()), (31, 31, 31));
    assert_eq!(rows[..3], [0.0, 15.0, 30.0]);
    assert_eq!(*rows.last().unwrap(), 31.0 * 15.0, "31 non-zeros per observation");
    assert_eq!(*cols.last().unwrap(), (11 * 2 + 3 * 3 + 14) as f64, "last weight's column");
    let inputs: Vec<f64> = [cam.clone(), x.clone(), vec![0.8]].concat();
    for r in 0..2 {
        let want = fd(
            |v| {
                let o = t.eval("ba", "objective", input(&v[..11], &v[11..14], v[14]));
                f64s(&o["reproj_error"]["elements"])[r]
            },
            &inputs,
            1e-6,
        );
        assert_close(&format!("ba row {r}"), &vals[15 * r..15 * r + 15], &want, 1e-5);
    }
    let w_err = |t: &mut Tool, w: f64| {
        t.eval("ba", "objective", input(&cam, &x, w))["w_err"]["element"].as_f64().unwrap()
    };
    let want = (w_err(&mut t, 0.8 + 1e-6) - w_err(&mut t, 0.8 - 1e-6)) / 2e-6;
    assert!(close(vals[30], want, 1e-6), "w_err derivative {} vs {want}", vals[30]);
}

#[test]
fn saddle_all_four_modes_find_the_saddle_point() {
    let mut t = Tool::start();
    t.define("saddle");
    let mut outs = Vec::new();
    for f in ["ff", "fr", "rf", "rr"] {
        let v = f64s(&t.eval("saddle", f, json!({"start": [1.0, 1.0]})));
        assert_eq!(v.len(), 4);
        // The saddle of (x1² + y1²) - (x2² + y2²) is the origin.
        assert!(v.iter().all(|c| c.abs() < 1e-4), "{f}: {v:?}");
        outs.push(v);
    }
    for o in &outs[1..] {
        assert_close("saddle modes agree", o, &outs[0], 1e-9);
    }
}

/// A small made-up hand: 22 bones in a wrist + five four-bone fingers + forearm tree, random
/// affine rest transforms, `nv` vertices each skinned to two or three bones, and triangles
/// over consecutive vertices.
fn ht_model(nv: usize) -> Value {
    let nb = 22;
    let r = rand(31, 40 * nb + 10 * nv);
    let mut k = 0;
    let mut next = |scale: f64| {
        k += 1;
        scale * (r[k - 1] - 0.5)
    };
    fn affine(next: &mut impl FnMut(f64) -> f64) -> Vec<Vec<f64>> {
        let id = |i: usize, j: usize| if i == j { 1.0 } else { 0.0 };
        (0..4)
            .map(|i| (0..4).map(|j| if i == 3 { id(i, j) } else { id(i, j) + next(0.6) }).collect())
            .collect()
    }
    let parents: Vec<i64> = (0..nb as i64)
        .map(|b| {
            if b == 0 || b == 21 {
                -1
            } else if (b - 1) % 4 == 0 {
                0
            } else {
                b - 1
            }
        })
        .collect();
    let base_relatives: Vec<_> = (0..nb).map(|_| affine(&mut next)).collect();
    let inverse_base_absolutes: Vec<_> = (0..nb).map(|_| affine(&mut next)).collect();
    let base_positions: Vec<Vec<f64>> = (0..nv).map(|_| vec![next(2.0), next(2.0), next(2.0), 1.0]).collect();
    let weights: Vec<Vec<f64>> = (0..nv)
        .map(|v| {
            let mut w = vec![0.0; nb];
            w[v % nb] = 0.5;
            w[(3 * v + 1) % nb] += 0.3;
            w[(5 * v + 7) % nb] += 0.2;
            w
        })
        .collect();
    let triangles: Vec<[usize; 3]> = (0..nv - 2).map(|t| [t, t + 1, t + 2]).collect();
    json!({
        "bone_count": nb,
        "bone_names": (0..nb).map(|b| format!("bone{b}")).collect::<Vec<_>>(),
        "parents": parents,
        "base_relatives": base_relatives,
        "inverse_base_absolutes": inverse_base_absolutes,
        "base_positions": base_positions,
        "weights": weights,
        "triangles": triangles,
        "is_mirrored": false,
    })
}

#[test]
fn ht_jacobians_match_finite_differences() {
    let mut t = Tool::start();
    t.define("ht");
    let nv = 12;
    let model = ht_model(nv);
    let theta: Vec<f64> = rand(5, 26).iter().map(|x| x - 0.5).collect();
    let npts = 5;
    let points: Vec<Vec<f64>> =
        rand(6, 3 * npts).chunks(3).map(|p| p.iter().map(|x| 4.0 * x - 2.0).collect()).collect();
    let us: Vec<Vec<f64>> = rand(7, 2 * npts).chunks(2).map(|u| vec![0.6 * u[0], 0.4 * u[1]]).collect();
    for complicated in [false, true] {
        let corr: Vec<usize> = (0..npts).map(|i| (3 * i + 1) % (nv - 2)).collect();
        let input = |theta: &[f64], us: &[Vec<f64>]| {
            json!({
                "theta": theta,
                "data": {"model": model, "correspondences": corr, "points": points},
                "us": if complicated { json!(us) } else { json!([]) },
            })
        };
        let jac: Vec<Vec<f64>> =
            t.eval("ht", "jacobian", input(&theta, &us)).as_array().unwrap().iter().map(f64s).collect();
        let extra = if complicated { 2 } else { 0 };
        assert_eq!(jac.len(), 3 * npts, "rows");
        assert!(jac.iter().all(|r| r.len() == 26 + extra), "columns");
        let h = 1e-6;
        let mut obj = |theta: &[f64], us: &[Vec<f64>]| f64s(&t.eval("ht", "objective", input(theta, us)));
        assert_eq!(obj(&theta, &us).len(), 3 * npts);
        for k in 0..26 {
            let (mut tp, mut tm) = (theta.clone(), theta.clone());
            tp[k] += h;
            tm[k] -= h;
            let (fp, fm) = (obj(&tp, &us), obj(&tm, &us));
            let want: Vec<f64> = fp.iter().zip(&fm).map(|(p, m)| (p - m) / (2.0 * h)).collect();
            let got: Vec<f64> = jac.iter().map(|r| r[extra + k]).collect();
            assert_close(&format!("ht (complicated: {complicated}) d/dtheta[{k}]"), &got, &want, 1e-5);
        }
        if complicated {
            for i in 0..npts {
                for k in 0..2 {
                    let (mut up, mut um) = (us.clone(), us.clone());
                    up[i][k] += h;
                    um[i][k] -= h;
                    let (fp, fm) = (obj(&theta, &up), obj(&theta, &um));
                    for (row, r) in jac.iter().enumerate() {
                        // Only point i's own rows depend on us[i]; the Jacobian stores that block.
                        if row / 3 == i {
                            let want = (fp[row] - fm[row]) / (2.0 * h);
                            assert!(
                                close(r[k], want, 1e-5),
                                "ht d/dus[{i}][{k}] row {row}: {} vs {want}",
                                r[k]
                            );
                        } else {
                            assert_eq!(fp[row], fm[row], "row {row} must not depend on us[{i}]");
                        }
                    }
                }
            }
        }
    }
}
