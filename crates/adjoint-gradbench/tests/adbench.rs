//! ADBench input readers: the real files parse to the shapes and values in their text, and
//! hostile inputs (truncated, wrong counts, non-numbers, non-finite numbers, huge declared sizes)
//! are errors that say where, never panics or huge allocations. Also replays the `adbench` fuzz
//! corpus (`fuzz/regressions/adbench/`).

use std::path::{Path, PathBuf};

use adjoint_gradbench::adbench::*;

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/adbench").join(rel)
}

fn bytes(rel: &str) -> Vec<u8> {
    std::fs::read(data(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Byte offsets just after each white-space separated token.
fn token_ends(text: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    for i in 0..text.len() {
        let space = text[i].is_ascii_whitespace();
        if !space && (i + 1 == text.len() || text[i + 1].is_ascii_whitespace()) {
            ends.push(i + 1);
        }
    }
    ends
}

/// Replace the `index`-th token of `text` by `by`.
fn replace_token(text: &[u8], index: usize, by: &str) -> Vec<u8> {
    let end = token_ends(text)[index];
    let start = text[..end].iter().rposition(|b| b.is_ascii_whitespace()).map_or(0, |p| p + 1);
    [&text[..start], by.as_bytes(), &text[end..]].concat()
}

/// Every cut of `text` after one of its tokens but the last must be an error (`stride` > 1 tries
/// every stride-th cut plus the last few, for long files).
fn every_truncation_fails<T: std::fmt::Debug>(
    text: &[u8],
    stride: usize,
    parse: impl Fn(&[u8]) -> Result<T>,
) {
    let ends = token_ends(text);
    let n = ends.len();
    let cuts = (0..n - 1).filter(|&i| i % stride == 0 || i + 5 >= n).map(|i| ends[i]).chain([0]);
    for cut in cuts {
        match parse(&text[..cut]) {
            Ok(v) => panic!("truncated at byte {cut} of {} but parsed: {v:?}", text.len()),
            Err(e) => assert!(e.message.contains("truncated") || e.message.contains("needs"), "{e}"),
        }
    }
    parse(&text[..ends[n - 1]]).expect("untruncated file must parse");
}

fn err_msg<T: std::fmt::Debug>(r: Result<T>) -> String {
    match r {
        Ok(v) => panic!("expected an error, parsed {v:?}"),
        Err(e) => e.to_string(),
    }
}

fn assert_contains(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "message {msg:?} lacks {p:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Real files

#[test]
fn gmm_test_input_parses() {
    let g = read_gmm(&data("gmm/test.txt"), false).unwrap();
    assert_eq!((g.d, g.k, g.n, g.icf_len()), (2, 3, 1, 3));
    assert_eq!(g.alphas, [-0.649014, 1.181166, -0.758453]);
    assert_eq!(g.means, [0.092339, 0.186260, 0.345561, 0.396767, 0.538817, 0.419195]);
    assert_eq!(&g.icf[6..], &[0.166813, -1.965419, -1.270071]);
    assert_eq!(g.point(0), &[1.175171, 2.029160]);
    assert_eq!((g.wishart_gamma, g.wishart_m, g.replicated), (1.0, 0, false));
}

#[test]
fn gmm_1k_input_parses() {
    let g = read_gmm(&data("gmm/1k/gmm_d10_K5.txt"), false).unwrap();
    assert_eq!((g.d, g.k, g.n), (10, 5, 1000));
    assert_eq!((g.alphas.len(), g.means.len(), g.icf.len(), g.x.len()), (5, 50, 5 * 55, 10_000));
    assert_eq!(g.wishart_gamma, 1.0);
}

#[test]
fn gmm_replicate_point_input_parses_without_materialising_points() {
    let g = read_gmm(&data("gmm/2.5M/gmm_d2_K5.txt"), true).unwrap();
    assert_eq!((g.d, g.k, g.n, g.replicated), (2, 5, 2_500_000, true));
    assert_eq!(g.x, [1.270848, 0.066009]);
    assert_eq!(g.point(2_499_999), &[1.270848, 0.066009]);
    assert_eq!(g.icf[3..6], [1.175171, 2.029160, -0.275157]);
    // Without the flag, the header asks for 2.5M points the file does not have.
    let e = err_msg(read_gmm(&data("gmm/2.5M/gmm_d2_K5.txt"), false));
    assert_contains(&e, &["gmm_d2_K5.txt:1:", "`2 5 2500000`", "needs 5000032 more numbers", "only 34 more"]);
}

#[test]
fn ba_inputs_parse() {
    let b = read_ba(&data("ba/test.txt")).unwrap();
    assert_eq!((b.n, b.m, b.p), (2, 10, 10));
    assert_eq!((b.cam[0], b.cam[6], b.cam[10]), (1.797201, 211.628116, 0.069976));
    assert_eq!(b.x, [4.173048, 5.586898, 1.403869]);
    assert_eq!((b.w, b.feat), (0.417022, [-525.672849, 161.811929]));
    assert_eq!(b.obs(3), (1, 3));
    let b = read_ba(&data("ba/ba1_n49_m7776_p31843.txt")).unwrap();
    assert_eq!((b.n, b.m, b.p, b.cam[0], b.feat[1]), (49, 7776, 31843, -0.758453, 834.209256));
    assert_eq!(b.obs(31842), (31842 % 49, 31842 % 7776));
}

#[test]
fn hand_inputs_parse_and_match_the_model() {
    let simple = read_hand(&data("hand/model"), &data("hand/test.txt"), false).unwrap();
    let m = &simple.model;
    assert_eq!((m.bones.len(), m.vertices.len(), m.triangles.len()), (22, 544, 1084));
    assert_eq!((m.bones[0].name.as_str(), m.bones[0].parent), ("wrist", None));
    assert_eq!((m.bones[1].name.as_str(), m.bones[1].parent), ("thumb1", Some(0)));
    assert_eq!(m.bones[0].base_relative[..3], [0.9205236434936523, -0.1684776246547699, 0.3524934947490692]);
    assert_eq!(m.bones[0].inverse_base_absolute[15], 1.0);
    assert_eq!(m.bones[21].name, "forearm");
    let v0 = &m.vertices[0];
    assert_eq!(v0.position, [0.028303472325205803, 0.07706871628761292, 0.01739514246582985]);
    assert_eq!(v0.weights.len(), 4);
    assert_eq!(v0.weights[0], (2, 0.2707933843876052));
    assert_eq!(m.vertices[543].weights, [(21, 1.0)]);
    assert_eq!((m.triangles[0], m.triangles[1083]), ([290, 412, 289], [531, 533, 540]));

    let inp = &simple.input;
    assert_eq!(inp.correspondences, [309, 387]);
    assert_eq!(inp.points[1], [0.599599, -1.148071, -1.730528]);
    assert_eq!((inp.theta.len(), inp.theta[0], inp.theta[25]), (26, -0.521279, 0.204648));
    assert!(inp.us.is_none());

    let comp = read_hand(&data("hand/model"), &data("hand/hand_complicated.txt"), true).unwrap();
    assert_eq!(comp.input.us.as_deref(), Some(&[[0.2, 0.25], [0.4, 0.5]][..]));
    assert_eq!(comp.input.theta, inp.theta);

    // The wrong problem kind is caught: left-over tokens, or a file too short.
    let e = err_msg(read_hand_input(&data("hand/hand_complicated.txt"), false));
    assert_contains(&e, &["hand_complicated.txt:", "trailing"]);
    let e = err_msg(read_hand_input(&data("hand/test.txt"), true));
    assert_contains(&e, &["test.txt:1:", "complicated", "needs 38 more numbers", "only 34"]);
}

#[test]
fn lstm_input_parses() {
    let l = read_lstm(&data("lstm/lstm_l2_c1024.txt")).unwrap();
    assert_eq!((l.l, l.c, l.b), (2, 1024, 14));
    assert_eq!(
        (l.main_params.len(), l.extra_params.len(), l.state.len(), l.sequence.len()),
        (224, 42, 56, 1024 * 14)
    );
    assert_eq!((l.main_params[0], l.main_params[223]), (0.7477620204927391, 0.9544461199510779));
    assert_eq!((l.extra_params[0], l.extra_params[41]), (0.5848465223020524, 0.11670601224776311));
    assert_eq!((l.state[0], l.state[55]), (0.9368207218464604, 0.26003446100527405));
    assert_eq!(l.sequence[..14], [0., 0., 0., 0., 0., 0., 0., 1., 0., 1., 0., 1., 0., 0.]);
    assert_eq!(l.sequence[1023 * 14..], [0., 0., 0., 0., 0., 0., 0., 1., 1., 1., 0., 0., 0., 0.]);
}

// ---------------------------------------------------------------------------------------------
// Truncation

#[test]
fn truncation_at_every_token_is_an_error() {
    every_truncation_fails(&bytes("gmm/test.txt"), 1, |b| parse_gmm(b, "t", false));
    every_truncation_fails(&bytes("gmm/2.5M/gmm_d2_K5.txt"), 1, |b| parse_gmm(b, "t", true));
    every_truncation_fails(&bytes("gmm/1k/gmm_d10_K5.txt"), 41, |b| parse_gmm(b, "t", false));
    every_truncation_fails(&bytes("ba/test.txt"), 1, |b| parse_ba(b, "t"));
    every_truncation_fails(&bytes("hand/test.txt"), 1, |b| parse_hand_input(b, "t", false));
    every_truncation_fails(&bytes("hand/hand_complicated.txt"), 1, |b| parse_hand_input(b, "t", true));
    every_truncation_fails(&bytes("lstm/lstm_l2_c1024.txt"), 53, |b| parse_lstm(b, "t"));
}

#[test]
fn truncated_hand_model_lines_are_errors() {
    let bones = bytes("hand/model/bones.txt");
    let vertices = bytes("hand/model/vertices.txt");
    let triangles = bytes("hand/model/triangles.txt");
    parse_hand_model(&bones, &vertices, &triangles).unwrap();
    // Cut each file after every `:` of its first and last lines: a record missing fields.
    for (which, text) in [(0, &bones), (1, &vertices), (2, &triangles)] {
        let first_nl = text.iter().position(|&b| b == b'\n').unwrap();
        let last_start = text[..text.len() - 1].iter().rposition(|&b| b == b'\n').unwrap() + 1;
        let cuts = text.iter().enumerate().filter(|&(i, &b)| b == b':' && (i < first_nl || i > last_start));
        for (cut, _) in cuts {
            let t = &text[..cut];
            let r = match which {
                0 => parse_hand_model(t, &vertices, &triangles),
                1 => parse_hand_model(&bones, t, &triangles),
                _ => parse_hand_model(&bones, &vertices, t),
            };
            let e = err_msg(r);
            assert!(e.contains("fields") || e.contains("indices"), "{e}");
        }
    }
    // Empty files.
    assert_contains(&err_msg(parse_hand_model(b"", &vertices, &triangles)), &["bones.txt", "no bones"]);
    assert_contains(
        &err_msg(parse_hand_model(&bones, b"\n\n", &triangles)),
        &["vertices.txt", "no vertices"],
    );
}

// ---------------------------------------------------------------------------------------------
// Wrong counts, non-numbers, non-finite values, huge sizes

#[test]
fn wrong_counts_are_errors_with_file_and_line() {
    let gmm = bytes("gmm/test.txt");
    // n = 2 but one point: the file is one number short.
    let e = err_msg(parse_gmm(&replace_token(&gmm, 2, "2"), "gmm.txt", false));
    assert_contains(&e, &["gmm.txt:1:", "`2 3 2`", "needs 24 more numbers", "only 22"]);
    // K = 2 with three components' worth of data: the fields shift and something breaks.
    let e = err_msg(parse_gmm(&replace_token(&gmm, 1, "2"), "gmm.txt", false));
    assert_contains(&e, &["gmm.txt:"]);
    // An extra point after `γ m`.
    let extra = [&gmm[..], b"1 2\n"].concat();
    assert_contains(
        &err_msg(parse_gmm(&extra, "gmm.txt", false)),
        &["gmm.txt:13:", "2 unexpected trailing token"],
    );
    for (i, name) in [(0, "d"), (1, "K"), (2, "n")] {
        let e = err_msg(parse_gmm(&replace_token(&gmm, i, "0"), "gmm.txt", false));
        assert_contains(&e, &["gmm.txt:1:", &format!("{name} must be at least 1")]);
    }
    let ba = bytes("ba/test.txt");
    assert_contains(
        &err_msg(parse_ba(&replace_token(&ba, 0, "0"), "ba.txt")),
        &["ba.txt:1:", "n must be at least 1"],
    );
    assert_contains(
        &err_msg(parse_ba(&replace_token(&ba, 1, "0"), "ba.txt")),
        &["ba.txt:1:", "m must be at least 1"],
    );
    let extra = [&ba[..], b" 1.0\n"].concat();
    assert_contains(
        &err_msg(parse_ba(&extra, "ba.txt")),
        &["ba.txt:6:", "1 unexpected trailing token", "\"1.0\""],
    );
    let lstm = bytes("lstm/lstm_l2_c1024.txt");
    assert_contains(
        &err_msg(parse_lstm(&replace_token(&lstm, 1, "1"), "l.txt")),
        &["l.txt:1:", "c must be at least 2"],
    );
    assert_contains(
        &err_msg(parse_lstm(&replace_token(&lstm, 1, "1025"), "l.txt")),
        &["l.txt:1:", "needs 14672"],
    );
    assert_contains(&err_msg(parse_lstm(&replace_token(&lstm, 0, "1"), "l.txt")), &["l.txt:"]);
    let hand = bytes("hand/test.txt");
    assert_contains(
        &err_msg(parse_hand_input(&replace_token(&hand, 1, "27"), "h.txt", false)),
        &["h.txt:1:", "n_theta must be 26"],
    );
    assert_contains(
        &err_msg(parse_hand_input(&replace_token(&hand, 0, "3"), "h.txt", false)),
        &["h.txt:1:", "needs 38"],
    );
}

#[test]
fn non_numbers_are_errors_naming_the_token() {
    let gmm = bytes("gmm/test.txt");
    let e = err_msg(parse_gmm(&replace_token(&gmm, 4, "abc"), "gmm.txt", false));
    assert_contains(&e, &["gmm.txt:3:", "alpha[1]", "expected a number", "\"abc\""]);
    let e = err_msg(parse_gmm(&replace_token(&gmm, 8, "0.3.4"), "gmm.txt", false));
    assert_contains(&e, &["gmm.txt:6:", "mean[1][0]", "\"0.3.4\""]);
    for bad in ["1.5", "0x2", "-2", "two", "2e0"] {
        let e = err_msg(parse_gmm(&replace_token(&gmm, 0, bad), "gmm.txt", false));
        assert_contains(&e, &["gmm.txt:1:", "d (dimension)", bad]);
    }
    let e = err_msg(parse_gmm(&replace_token(&gmm, 24, "-1"), "gmm.txt", false));
    assert_contains(&e, &["gmm.txt:12:", "Wishart m", "non-negative"]);
    let ba = bytes("ba/test.txt");
    let e = err_msg(parse_ba(&replace_token(&ba, 9, "\u{fffd}\u{1}"), "ba.txt"));
    assert_contains(&e, &["ba.txt:2:", "camera[6]", "expected a number"]);
    let nonutf8 = [&ba[..30], &[0xff, 0xfe][..], &ba[30..]].concat();
    assert_contains(&err_msg(parse_ba(&nonutf8, "ba.txt")), &["ba.txt:2:", "expected a number"]);
    let hand = bytes("hand/test.txt");
    let e = err_msg(parse_hand_input(&replace_token(&hand, 2, "-309"), "h.txt", false));
    assert_contains(&e, &["h.txt:2:", "correspondence 0", "non-negative"]);
    let lstm = bytes("lstm/lstm_l2_c1024.txt");
    let first_seq = 3 + 224 + 42 + 56;
    let e = err_msg(parse_lstm(&replace_token(&lstm, first_seq + 3, "2"), "l.txt"));
    assert_contains(&e, &["l.txt:", "sequence[0][3] must be 0 or 1"]);
    let e = err_msg(parse_lstm(&replace_token(&lstm, 3 + 224, "x"), "l.txt"));
    assert_contains(&e, &["l.txt:8:", "extra_params[0][0]", "\"x\""]);
}

#[test]
fn non_finite_numbers_are_errors() {
    let gmm = bytes("gmm/test.txt");
    for bad in ["nan", "NaN", "inf", "-inf", "infinity", "1e400", "-1e999"] {
        for tok in [3, 8, 17, 19, 20] {
            let e = err_msg(parse_gmm(&replace_token(&gmm, tok, bad), "gmm.txt", false));
            assert!(e.contains("not a finite number"), "{bad} at token {tok}: {e}");
        }
        let e = err_msg(parse_ba(&replace_token(&bytes("ba/test.txt"), 17, bad), "ba.txt"));
        assert_contains(&e, &["ba.txt:4:", "weight", "not a finite number"]);
        let e = err_msg(parse_hand_input(
            &replace_token(&bytes("hand/hand_complicated.txt"), 13, bad),
            "h.txt",
            true,
        ));
        assert_contains(&e, &["h.txt:5:", "u 1[1]", "not a finite number"]);
        let e = err_msg(parse_lstm(&replace_token(&bytes("lstm/lstm_l2_c1024.txt"), 100, bad), "l.txt"));
        assert_contains(&e, &["main_params[1][41]", "not a finite number"]);
    }
    let e = err_msg(parse_gmm(&replace_token(&gmm, 23, "0"), "gmm.txt", false));
    assert_contains(&e, &["gmm.txt:12:", "Wishart gamma must be positive"]);
    let mut bones = bytes("hand/model/bones.txt");
    let at = bones.windows(3).position(|w| w == b"0.0").unwrap();
    bones.splice(at..at + 3, *b"nan");
    let e = err_msg(parse_hand_model(
        &bones,
        &bytes("hand/model/vertices.txt"),
        &bytes("hand/model/triangles.txt"),
    ));
    assert_contains(&e, &["bones.txt:1:", "bone 0 (wrist) base_relative[3]", "not a finite number"]);
}

#[test]
fn huge_declared_sizes_are_errors_before_allocating() {
    // Each would need terabytes if the header were believed.
    type Parse = Box<dyn Fn(&[u8]) -> Result<()>>;
    let cases: [(&str, Parse); 4] = [
        ("gmm", Box::new(|b| parse_gmm(b, "f", false).map(drop))),
        ("lstm", Box::new(|b| parse_lstm(b, "f").map(drop))),
        ("hand", Box::new(|b| parse_hand_input(b, "f", true).map(drop))),
        ("ba", Box::new(|b| parse_ba(b, "f").map(drop))),
    ];
    for (name, parse) in &cases {
        for header in [
            "1000000000000 5 5",
            "2147483648 5 5",
            "2147483647 2147483647 2147483647",
            "5 2147483647 2147483647",
        ] {
            let text = format!("{header}\n1.0 2.0 3.0\n");
            let hdr = if *name == "hand" { header.replacen(" 5 5", " 26", 1) } else { header.to_string() };
            let text = if *name == "hand" { format!("{hdr}\n1.0\n") } else { text };
            let e = parse(text.as_bytes()).unwrap_err().to_string();
            assert!(
                e.contains("larger than 2147483647")
                    || e.contains("needs")
                    || e.contains("impossibly large")
                    || e.contains("n_theta"),
                "{name} {hdr}: {e}"
            );
        }
    }
    // d(d+1)/2 × K overflows 64 bits.
    let e = err_msg(parse_gmm(b"2147483647 2147483647 1\n", "f", false));
    assert_contains(&e, &["f:1:", "impossibly large"]);
    // BA and replicate-point GMM keep one copy: huge counts are fine, nothing is allocated.
    let ba = replace_token(&replace_token(&bytes("ba/test.txt"), 0, "2147483647"), 2, "2147483647");
    assert_eq!(parse_ba(&ba, "ba.txt").unwrap().obs(2147483646), (2147483646, 2147483646 % 10));
    let g = replace_token(&bytes("gmm/2.5M/gmm_d2_K5.txt"), 2, "2147483647");
    assert_eq!(parse_gmm(&g, "g.txt", true).unwrap().point(2147483646), &[1.270848, 0.066009]);
    // Vertex weight counts are checked against the fields on the line.
    let v = b"0:0:0:0:0:0:0:0:2147483647:0:1\n";
    assert_contains(
        &err_msg(parse_vertices(v, "v.txt", 22)),
        &["v.txt:1:", "needs 4294967294 bone:weight fields, found 2"],
    );
}

#[test]
fn model_structure_errors() {
    let bones = bytes("hand/model/bones.txt");
    let vertices = bytes("hand/model/vertices.txt");
    let triangles = bytes("hand/model/triangles.txt");
    let text = String::from_utf8(bones.clone()).unwrap();
    // The second bone names a later parent.
    let forward = text.replacen("thumb1:0:", "thumb1:5:", 1);
    let e = err_msg(parse_hand_model(forward.as_bytes(), &vertices, &triangles));
    assert_contains(&e, &["bones.txt:2:", "bone 1 (thumb1): parent 5 must be -1 or an earlier bone"]);
    // A vertex weight on bone 22 of 22.
    let vt = String::from_utf8(vertices.clone()).unwrap().replacen(":1:21:1.0\n", ":1:22:1.0\n", 1);
    let e = err_msg(parse_hand_model(&bones, vt.as_bytes(), &triangles));
    assert_contains(&e, &["vertices.txt:", "bone 22 out of range (the model has 22 bones)"]);
    // The same bone twice on one vertex.
    let e = err_msg(parse_vertices(b"0:0:0:0:0:0:0:0:3:1:0.5:2:0.25:1:0.25\n", "v.txt", 22));
    assert_contains(&e, &["v.txt:1:", "vertex 0: bone 1 has two weights"]);
    // A line of 200,000 distinct weights is checked in n log n, not n².
    let many: String = (0..200_000).map(|b| format!(":{b}:0.5")).collect();
    let line = format!("0:0:0:0:0:0:0:0:200000{many}\n");
    assert_eq!(parse_vertices(line.as_bytes(), "v.txt", 200_000).unwrap()[0].weights.len(), 200_000);
    // A triangle on vertex 544 of 544.
    let tt = String::from_utf8(triangles.clone()).unwrap().replacen("290:412:289", "290:544:289", 1);
    let e = err_msg(parse_hand_model(&bones, &vertices, tt.as_bytes()));
    assert_contains(&e, &["triangles.txt:1:", "triangle 0: vertex 544 out of range"]);
    // Correspondences are checked against the model.
    let model = parse_hand_model(&bones, &vertices, &triangles).unwrap();
    let mut inp = read_hand_input(&data("hand/test.txt"), false).unwrap();
    inp.correspondences[1] = 544;
    assert_contains(
        &err_msg(check_hand(&model, &inp, "h.txt")),
        &["h.txt:", "correspondence 1: vertex 544 out of range"],
    );
    inp.us = Some(vec![[0.0; 2]; 2]);
    inp.correspondences[1] = 1084;
    assert_contains(
        &err_msg(check_hand(&model, &inp, "h.txt")),
        &["correspondence 1: triangle 1084 out of range"],
    );
    // A model with too few bones for θ.
    let few: Vec<&str> = text.lines().take(3).collect();
    let vt: String = String::from_utf8(vertices)
        .unwrap()
        .lines()
        .filter(|l| l.ends_with(":1:0:1.0"))
        .collect::<Vec<_>>()
        .join("\n");
    let small = parse_hand_model(
        few.join("\n").as_bytes(),
        format!("{vt}\n0:0:0:0:0:0:0:0:0\n").as_bytes(),
        b"0:0:0\n",
    )
    .unwrap();
    inp.us = None;
    inp.correspondences = vec![0, 0];
    assert_contains(&err_msg(check_hand(&small, &inp, "h.txt")), &["3 bones", "at least 21"]);
    // Missing files name the path.
    let e = err_msg(read_hand(&data("hand/no_such_model"), &data("hand/test.txt"), false));
    assert_contains(&e, &["no_such_model", "bones.txt", "cannot read"]);
}

// ---------------------------------------------------------------------------------------------
// Fuzz corpus

/// The `adbench` fuzz target's body, shared with `fuzz/fuzz_targets/adbench.rs`.
#[path = "../../../fuzz/harness/adbench.rs"]
mod fuzz_adbench;

#[test]
fn fuzz_corpus_replays_without_panics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/adbench");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let b = std::fs::read(&path).unwrap();
        if std::panic::catch_unwind(|| fuzz_adbench::run(&b)).is_err() {
            panic!("{} panicked", path.display());
        }
        n += 1;
    }
    assert!(n >= 10, "{}: the corpus is missing", dir.display());
}
