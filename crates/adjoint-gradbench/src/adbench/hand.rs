//! Hand tracking: the model directory (`bones.txt`, `vertices.txt`, `triangles.txt`) and the
//! input file, checked against each other.

use super::*;

// ---------------------------------------------------------------------------------------------
// Hand

/// One bone of the hand model (`bones.txt`).
#[derive(Debug, Clone, PartialEq)]
pub struct Bone {
    /// Its name.
    pub name: String,
    /// Index of its parent bone, always an earlier bone; `None` for a root (`-1` in the file).
    pub parent: Option<usize>,
    /// 4×4 base relative transform, row-major.
    pub base_relative: [f64; 16],
    /// 4×4 inverse base absolute transform, row-major.
    pub inverse_base_absolute: [f64; 16],
}

/// One vertex of the hand model (`vertices.txt`).
#[derive(Debug, Clone, PartialEq)]
pub struct Vertex {
    /// Rest position x, y, z.
    pub position: [f64; 3],
    /// Skinning weights as `(bone, weight)`, each bone at most once.
    pub weights: Vec<(usize, f64)>,
}

/// ADBench's hand model: a directory holding `bones.txt`, `vertices.txt` and `triangles.txt`.
#[derive(Debug, Clone, PartialEq)]
pub struct HandModel {
    /// The skeleton, parents before children.
    pub bones: Vec<Bone>,
    /// The mesh vertices.
    pub vertices: Vec<Vertex>,
    /// Triangles as vertex indices.
    pub triangles: Vec<[usize; 3]>,
}

/// An ADBench hand input file (SPEC.md §4): `N n_theta`, N × `corr x y z`, in the complicated
/// problem N × `u1 u2`, then θ.
#[derive(Debug, Clone, PartialEq)]
pub struct HandInput {
    /// Per point: a vertex index (simple problem) or a triangle index (complicated problem).
    pub correspondences: Vec<usize>,
    /// The observed points.
    pub points: Vec<[f64; 3]>,
    /// Barycentric coordinates `(u1, u2)` per point; `Some` exactly for the complicated problem.
    pub us: Option<Vec<[f64; 2]>>,
    /// The pose parameters θ ([`HAND_THETA_COUNT`] of them).
    pub theta: Vec<f64>,
}

/// A hand model and an input checked against it.
#[derive(Debug, Clone, PartialEq)]
pub struct HandProblem {
    /// The model.
    pub model: HandModel,
    /// The input.
    pub input: HandInput,
}

/// Non-empty lines of a `:`-separated model file, with 1-based line numbers, as fields.
fn records<'a>(text: &'a [u8]) -> impl Iterator<Item = (usize, Vec<&'a [u8]>)> + 'a {
    text.split(|&b| b == b'\n').enumerate().filter_map(|(i, line)| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(|&b| is_space(b)) {
            None
        } else {
            Some((i + 1, line.split(|&b| b == b':').map(trim).collect()))
        }
    })
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_space(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|&b| !is_space(b)).map_or(start, |e| e + 1);
    &s[start..end]
}

fn field_real(file: &str, line: usize, what: &dyn fmt::Display, tok: &[u8]) -> Result<f64> {
    parse_real(tok).map_err(|m| err(file, Some(line), format!("{what}: {m}")))
}

fn field_count(file: &str, line: usize, what: &str, tok: &[u8]) -> Result<usize> {
    parse_count(tok).map_err(|m| err(file, Some(line), format!("{what}: {m}")))
}

/// Parse `bones.txt`: per line `name:parent:` then 16 values of the base relative and 16 of the
/// inverse base absolute, both row-major.
pub fn parse_bones(text: &[u8], file: &str) -> Result<Vec<Bone>> {
    let mut bones: Vec<Bone> = Vec::new();
    for (line, fields) in records(text) {
        let i = bones.len();
        if fields.len() != 34 {
            return Err(err(
                file,
                Some(line),
                format!("bone {i}: expected 34 `:`-separated fields (name, parent, 2 × 16 matrix entries), found {}", fields.len()),
            ));
        }
        let name = std::str::from_utf8(fields[0])
            .ok()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                err(file, Some(line), format!("bone {i}: name {} is empty or not UTF-8", show(fields[0])))
            })?
            .to_string();
        let parent = if fields[1] == b"-1" {
            None
        } else {
            let p = field_count(file, line, &format!("bone {i} ({name}) parent"), fields[1])?;
            if p >= i {
                return Err(err(
                    file,
                    Some(line),
                    format!("bone {i} ({name}): parent {p} must be -1 or an earlier bone (0..{i})"),
                ));
            }
            Some(p)
        };
        let mut base_relative = [0.0; 16];
        let mut inverse_base_absolute = [0.0; 16];
        for j in 0..16 {
            base_relative[j] =
                field_real(file, line, &format_args!("bone {i} ({name}) base_relative[{j}]"), fields[2 + j])?;
            inverse_base_absolute[j] = field_real(
                file,
                line,
                &format_args!("bone {i} ({name}) inverse_base_absolute[{j}]"),
                fields[18 + j],
            )?;
        }
        bones.push(Bone { name, parent, base_relative, inverse_base_absolute });
    }
    if bones.is_empty() {
        return Err(err(file, None, "no bones"));
    }
    Ok(bones)
}

/// Parse `vertices.txt`: per line `x:y:z`, five ignored numbers (normal and texture
/// coordinates), a count, then that many `bone:weight` pairs. Bone indices are checked against
/// `n_bones`.
pub fn parse_vertices(text: &[u8], file: &str, n_bones: usize) -> Result<Vec<Vertex>> {
    let mut vertices = Vec::new();
    for (line, fields) in records(text) {
        let i = vertices.len();
        if fields.len() < 9 {
            return Err(err(
                file,
                Some(line),
                format!("vertex {i}: expected at least 9 `:`-separated fields (x, y, z, 5 ignored, count), found {}", fields.len()),
            ));
        }
        let mut position = [0.0; 3];
        for (j, v) in position.iter_mut().enumerate() {
            *v = field_real(file, line, &format_args!("vertex {i} coordinate {j}"), fields[j])?;
        }
        for (j, f) in fields[3..8].iter().enumerate() {
            field_real(file, line, &format_args!("vertex {i} field {}", 3 + j), f)?;
        }
        let count = field_count(file, line, &format!("vertex {i} weight count"), fields[8])?;
        let pairs = &fields[9..];
        if Some(pairs.len()) != count.checked_mul(2) {
            return Err(err(
                file,
                Some(line),
                format!(
                    "vertex {i}: weight count {count} needs {} bone:weight fields, found {}",
                    2 * count,
                    pairs.len()
                ),
            ));
        }
        let mut weights: Vec<(usize, f64)> = Vec::with_capacity(count);
        for (j, pair) in pairs.chunks_exact(2).enumerate() {
            let bone = field_count(file, line, &format!("vertex {i} weight {j} bone"), pair[0])?;
            if bone >= n_bones {
                return Err(err(
                    file,
                    Some(line),
                    format!(
                        "vertex {i} weight {j}: bone {bone} out of range (the model has {n_bones} bones)"
                    ),
                ));
            }
            let w = field_real(file, line, &format_args!("vertex {i} weight {j}"), pair[1])?;
            weights.push((bone, w));
        }
        // Sorted, not pairwise, so that a line of a million pairs is not a quadratic hang.
        let mut bones: Vec<usize> = weights.iter().map(|&(b, _)| b).collect();
        bones.sort_unstable();
        if let Some(w) = bones.windows(2).find(|w| w[0] == w[1]) {
            return Err(err(file, Some(line), format!("vertex {i}: bone {} has two weights", w[0])));
        }
        vertices.push(Vertex { position, weights });
    }
    if vertices.is_empty() {
        return Err(err(file, None, "no vertices"));
    }
    Ok(vertices)
}

/// Parse `triangles.txt`: per line `a:b:c`, vertex indices checked against `n_vertices`.
pub fn parse_triangles(text: &[u8], file: &str, n_vertices: usize) -> Result<Vec<[usize; 3]>> {
    let mut triangles = Vec::new();
    for (line, fields) in records(text) {
        let i = triangles.len();
        if fields.len() != 3 {
            return Err(err(
                file,
                Some(line),
                format!("triangle {i}: expected 3 `:`-separated vertex indices, found {}", fields.len()),
            ));
        }
        let mut tri = [0; 3];
        for (j, v) in tri.iter_mut().enumerate() {
            *v = field_count(file, line, &format!("triangle {i} vertex {j}"), fields[j])?;
            if *v >= n_vertices {
                return Err(err(
                    file,
                    Some(line),
                    format!("triangle {i}: vertex {} out of range (the model has {n_vertices} vertices)", *v),
                ));
            }
        }
        triangles.push(tri);
    }
    Ok(triangles)
}

/// Parse a hand model from the contents of its three files.
pub fn parse_hand_model(bones: &[u8], vertices: &[u8], triangles: &[u8]) -> Result<HandModel> {
    let bones = parse_bones(bones, "bones.txt")?;
    let vertices = parse_vertices(vertices, "vertices.txt", bones.len())?;
    let triangles = parse_triangles(triangles, "triangles.txt", vertices.len())?;
    Ok(HandModel { bones, vertices, triangles })
}

/// Read a hand model directory (`bones.txt`, `vertices.txt`, `triangles.txt`).
pub fn read_hand_model(dir: &Path) -> Result<HandModel> {
    let read = |name: &str| -> Result<(Vec<u8>, String)> {
        let path = dir.join(name);
        Ok((read_bytes(&path)?, path.display().to_string()))
    };
    let (b, bf) = read("bones.txt")?;
    let (v, vf) = read("vertices.txt")?;
    let (t, tf) = read("triangles.txt")?;
    let bones = parse_bones(&b, &bf)?;
    let vertices = parse_vertices(&v, &vf, bones.len())?;
    let triangles = parse_triangles(&t, &tf, vertices.len())?;
    Ok(HandModel { bones, vertices, triangles })
}

/// Parse a hand input; `complicated` selects the problem with barycentric coordinates.
pub fn parse_hand_input(text: &[u8], file: &str, complicated: bool) -> Result<HandInput> {
    let mut t = Tokens::new(text, file);
    let n = t.count("N (points)")?;
    let n_theta = t.count("n_theta")?;
    let line = t.line;
    if n_theta != HAND_THETA_COUNT {
        return Err(err(
            file,
            Some(line),
            format!("n_theta must be {HAND_THETA_COUNT} (ADBench's hand pose), found {n_theta}"),
        ));
    }
    let per_point = if complicated { 6 } else { 4 };
    let header = format!(
        "`N n_theta` = `{n} {n_theta}` ({} problem)",
        if complicated { "complicated" } else { "simple" }
    );
    t.need(n.checked_mul(per_point).and_then(|v| v.checked_add(n_theta)), &header, line)?;
    let mut correspondences = Vec::with_capacity(n);
    let mut points = Vec::with_capacity(n);
    for i in 0..n {
        correspondences.push(t.count(&format!("correspondence {i}"))?);
        points.push(t.array::<3>(&format!("point {i}"))?);
    }
    let us = if complicated {
        let mut us = Vec::with_capacity(n);
        for i in 0..n {
            us.push(t.array::<2>(&format!("u {i}"))?);
        }
        Some(us)
    } else {
        None
    };
    let theta = t.vector(n_theta, "theta")?;
    t.finish()?;
    Ok(HandInput { correspondences, points, us, theta })
}

/// Read a hand input file; see [`parse_hand_input`].
pub fn read_hand_input(path: &Path, complicated: bool) -> Result<HandInput> {
    parse_hand_input(&read_bytes(path)?, &path.display().to_string(), complicated)
}

/// Check an input against a model: the model has enough bones for θ, and every correspondence
/// names an existing vertex (simple) or triangle (complicated). `file` names the input in errors.
pub fn check_hand(model: &HandModel, input: &HandInput, file: &str) -> Result<()> {
    let (what, limit) = if input.us.is_some() {
        ("triangle", model.triangles.len())
    } else {
        ("vertex", model.vertices.len())
    };
    for (i, &c) in input.correspondences.iter().enumerate() {
        if c >= limit {
            return Err(err(
                file,
                None,
                format!("correspondence {i}: {what} {c} out of range (the model has {limit} {what}s)"),
            ));
        }
    }
    if model.bones.len() < HAND_MIN_BONES {
        return Err(err(
            file,
            None,
            format!(
                "the model has {} bones; ADBench's hand pose needs at least {HAND_MIN_BONES}",
                model.bones.len()
            ),
        ));
    }
    Ok(())
}

/// Read a hand model directory and an input file and check them against each other.
pub fn read_hand(model_dir: &Path, input: &Path, complicated: bool) -> Result<HandProblem> {
    let model = read_hand_model(model_dir)?;
    let inp = read_hand_input(input, complicated)?;
    check_hand(&model, &inp, &input.display().to_string())?;
    Ok(HandProblem { model, input: inp })
}
