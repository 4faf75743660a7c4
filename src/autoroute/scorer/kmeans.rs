//! Spherical k-means for the kNN bank's coarse index. Deterministic: seeded by a fixed stride
//! over the rows, a fixed number of Lloyd rounds, ties to the lower cluster.

/// Clusters `n` unit vectors of `dim` (row-major in `x`) into at most `c` groups by cosine.
/// Returns each row's cluster and the unit centroids (`c × dim`, row-major).
pub(crate) fn spherical_kmeans(
    x: &[f32],
    dim: usize,
    c: usize,
    rounds: usize,
) -> (Vec<usize>, Vec<f32>) {
    let n = x.len() / dim.max(1);
    let c = c.clamp(1, n.max(1));
    let row = |i: usize| &x[i * dim..(i + 1) * dim];
    // Seeds: every (n / c)-th row, so the start follows the data's own density.
    let mut cent: Vec<f32> = (0..c).flat_map(|j| row(j * n / c).to_vec()).collect();
    let mut assign = vec![0usize; n];
    for _ in 0..rounds {
        for (i, a) in assign.iter_mut().enumerate() {
            *a = nearest(row(i), &cent, dim);
        }
        let mut sum = vec![0.0f32; c * dim];
        for (i, &a) in assign.iter().enumerate() {
            sum[a * dim..(a + 1) * dim]
                .iter_mut()
                .zip(row(i))
                .for_each(|(s, v)| *s += v);
        }
        for (j, s) in sum.chunks_exact(dim).enumerate() {
            let norm = s.iter().map(|v| v * v).sum::<f32>().sqrt();
            // An emptied cluster keeps its old centroid.
            if norm > 0.0 {
                cent[j * dim..(j + 1) * dim]
                    .iter_mut()
                    .zip(s)
                    .for_each(|(c, v)| *c = v / norm);
            }
        }
    }
    for (i, a) in assign.iter_mut().enumerate() {
        *a = nearest(row(i), &cent, dim);
    }
    (assign, cent)
}

fn nearest(v: &[f32], cent: &[f32], dim: usize) -> usize {
    let mut best = (f32::NEG_INFINITY, 0);
    for (j, c) in cent.chunks_exact(dim).enumerate() {
        let d: f32 = v.iter().zip(c).map(|(a, b)| a * b).sum();
        if d > best.0 {
            best = (d, j);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separates_two_directions() {
        // Three vectors near x, three near y.
        let x = [
            1.0, 0.0, 0.99, 0.14, 0.98, -0.2, 0.0, 1.0, 0.14, 0.99, -0.2, 0.98,
        ];
        let (a, cent) = spherical_kmeans(&x, 2, 2, 5);
        assert_eq!(a[0], a[1]);
        assert_eq!(a[1], a[2]);
        assert_eq!(a[3], a[4]);
        assert_eq!(a[4], a[5]);
        assert_ne!(a[0], a[3]);
        assert_eq!(cent.len(), 4);
    }

    #[test]
    fn more_clusters_than_rows_is_fine() {
        let (a, cent) = spherical_kmeans(&[1.0, 0.0], 2, 8, 3);
        assert_eq!(a, vec![0]);
        assert_eq!(cent.len(), 2);
    }
}
