use super::*;

/// Maps one flat 2×2 frame of the given 10-bit code values; gives the 8-bit (Y, Cb, Cr).
fn flat(mapper: &Mapper, (y, u, v): (u16, u16, u16)) -> (u8, u8, u8) {
    let (yi, ui, vi) = ([y; 4], [u], [v]);
    let input = Planes10 {
        y: &yi,
        u: &ui,
        v: &vi,
        y_stride: 2,
        uv_stride: 1,
    };
    let (mut yo, mut uo, mut vo) = ([0u8; 4], [0u8], [0u8]);
    let mut output = Planes8 {
        y: &mut yo,
        u: &mut uo,
        v: &mut vo,
        y_stride: 2,
        uv_stride: 1,
    };
    mapper.frame(&input, &mut output, (2, 2), 1);
    assert!(yo.iter().all(|&s| s == yo[0]), "a flat frame stays flat");
    (yo[0], uo[0], vo[0])
}

/// PQ's inverse EOTF: cd/m² to a 10-bit limited-range code value.
fn pq_code(nits: f32) -> u16 {
    let (m1, m2) = (0.159_301_76_f32, 78.843_75_f32);
    let (c1, c2, c3) = (0.835_937_5_f32, 18.851_562_f32, 18.687_5_f32);
    let y = (nits / 10_000.0).powf(m1);
    let e = ((c1 + c2 * y) / (1.0 + c3 * y)).powf(m2);
    (64.0 + 876.0 * e).round() as u16
}

#[test]
fn the_transfer_functions_invert_their_standard_values() {
    // BT.2100: PQ 0.58 is about 203 cd/m²; HLG 0.75 is reference white, scene light 0.265.
    assert!(
        (pq_eotf(0.580_7) - 203.0).abs() < 2.0,
        "{}",
        pq_eotf(0.5807)
    );
    assert!((hlg_inverse_oetf(0.75) - 0.265).abs() < 0.002);
    assert!((hlg_inverse_oetf(1.0) - 1.0).abs() < 1e-3);
    assert!((bt1886_inverse_eotf(0.5) - 0.749).abs() < 1e-3);
}

#[test]
fn greys_stay_neutral_and_get_brighter_in_order() {
    for transfer in [Transfer::Hlg, Transfer::Pq] {
        let mapper = Mapper::new(Source::bt2100(transfer, 1000.0));
        let mut last = 0;
        for code in (64..=940).step_by(32) {
            let (y, u, v) = flat(&mapper, (code, 512, 512));
            assert_eq!((u, v), (128, 128), "{transfer:?} grey {code} gained a tint");
            assert!(
                y >= last,
                "{transfer:?}: {code} darker than the grey before"
            );
            last = y;
        }
        assert_eq!(flat(&mapper, (64, 512, 512)).0, 16, "black stays black");
    }
}

#[test]
fn the_peak_lands_on_white_and_highlights_below_it_are_not_clipped() {
    let mapper = Mapper::new(Source::bt2100(Transfer::Pq, 1000.0));
    assert_eq!(flat(&mapper, (pq_code(1000.0), 512, 512)).0, 235);
    let (y600, y300) = (
        flat(&mapper, (pq_code(600.0), 512, 512)).0,
        flat(&mapper, (pq_code(300.0), 512, 512)).0,
    );
    assert!(y300 < y600 && y600 < 230, "300: {y300}, 600: {y600}");
    // A brighter peak leaves the same grey darker.
    let brighter = Mapper::new(Source::bt2100(Transfer::Pq, 4000.0));
    assert!(flat(&brighter, (pq_code(600.0), 512, 512)).0 < y600);
}

#[test]
fn a_bt2020_red_beyond_bt709_stays_red() {
    // Pure BT.2020 red, PQ at 100 cd/m² on the red channel: R'G'B' = (e, 0, 0).
    let e = (pq_code(100.0) - 64) as f32 / 876.0;
    let (kr, kb) = (0.2627_f32, 0.0593_f32);
    let y = kr * e;
    let cr = (e - y) / (2.0 * (1.0 - kr));
    let cb = -y / (2.0 * (1.0 - kb));
    let code = |v: f32, off: f32, range: f32| (off + range * v).round() as u16;
    let mapper = Mapper::new(Source::bt2100(Transfer::Pq, 1000.0));
    let (_, u, v) = flat(
        &mapper,
        (
            code(y, 64.0, 876.0),
            code(cb, 512.0, 896.0),
            code(cr, 512.0, 896.0),
        ),
    );
    assert!(v > 200 && u < 128, "red came out Cb {u} Cr {v}");
}

#[test]
fn bands_give_the_same_frame_as_one_thread_with_odd_sizes() {
    let (w, h) = (37_usize, 23_usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let y: Vec<u16> = (0..w * h).map(|i| 64 + (i * 7 % 877) as u16).collect();
    let u: Vec<u16> = (0..cw * ch).map(|i| 64 + (i * 13 % 897) as u16).collect();
    let v: Vec<u16> = (0..cw * ch).map(|i| 64 + (i * 29 % 897) as u16).collect();
    let input = Planes10 {
        y: &y,
        u: &u,
        v: &v,
        y_stride: w,
        uv_stride: cw,
    };
    let run = |threads| {
        let (mut yo, mut uo, mut vo) = (vec![0u8; w * h], vec![0u8; cw * ch], vec![0u8; cw * ch]);
        let mut out = Planes8 {
            y: &mut yo,
            u: &mut uo,
            v: &mut vo,
            y_stride: w,
            uv_stride: cw,
        };
        Mapper::new(Source::bt2100(Transfer::Hlg, 1000.0)).frame(&input, &mut out, (w, h), threads);
        (yo, uo, vo)
    };
    let one = run(1);
    assert!(one.0.iter().all(|&s| (16..=235).contains(&s)));
    assert_eq!(one, run(3));
    assert_eq!(one, run(16));
}

#[test]
#[ignore = "a measurement: cargo test --release --lib hdr::tests::frame_speed -- --ignored --nocapture"]
fn frame_speed() {
    let (w, h) = (1920_usize, 1080_usize);
    let y: Vec<u16> = (0..w * h).map(|i| 64 + (i * 7 % 877) as u16).collect();
    let u: Vec<u16> = (0..w * h / 4).map(|i| 64 + (i * 13 % 897) as u16).collect();
    let v: Vec<u16> = (0..w * h / 4).map(|i| 64 + (i * 29 % 897) as u16).collect();
    let input = Planes10 {
        y: &y,
        u: &u,
        v: &v,
        y_stride: w,
        uv_stride: w / 2,
    };
    let (mut yo, mut uo, mut vo) = (vec![0u8; w * h], vec![0u8; w * h / 4], vec![0u8; w * h / 4]);
    let mapper = Mapper::new(Source::bt2100(Transfer::Hlg, 1000.0));
    for threads in [1, 2] {
        let started = std::time::Instant::now();
        for _ in 0..20 {
            let mut out = Planes8 {
                y: &mut yo,
                u: &mut uo,
                v: &mut vo,
                y_stride: w,
                uv_stride: w / 2,
            };
            mapper.frame(&input, &mut out, (w, h), threads);
        }
        eprintln!(
            "{threads} threads: {:?} per 1080p frame",
            started.elapsed() / 20
        );
    }
}
