//! Server-rendered SVG charts: a pure function from labelled time series to one
//! self-contained SVG document (no script, no external style or font), for the web console's
//! pages and for anything else that shows an image.
//!
//! Accessible: the document is an `img` labelled by its `<title>` and described by its `<desc>`
//! (ids derived from what is drawn, so several charts on a page do not clash);
//! every point carries a `<title>` (a tooltip in browsers, read by screen readers) with its
//! series, time and value; series differ by dash pattern as well as colour. Written with
//! quick-xml like every other document here, so every label is escaped.
//!
//! [`line_chart`] draws any [`Chart`]; [`size_chart`] and [`traffic_chart`] make the two the
//! console shows: a mailbox's or domain's size over time (`size_measurements`) and the mail
//! traffic per hour (the event log).

use mailstead_directory::sizes::SizeSample;
use mailstead_events::Traffic;
use quick_xml::Writer;
use quick_xml::events::BytesText;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::macros::format_description;

/// One line of a chart: `points` are (Unix seconds, value), in time order.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<(i64, f64)>,
}

/// What [`line_chart`] draws.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    pub title: String,
    /// The unit of the values, shown on the y axis and in tooltips ("messages", "MiB").
    pub unit: String,
    pub series: Vec<Series>,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 320.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 64.0;
/// Colours distinguishable by most colour-blind readers (Okabe and Ito's palette).
const COLOURS: [&str; 6] = [
    "#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9",
];
/// Dash patterns, so series differ without colour too.
const DASHES: [&str; 4] = ["none", "6 3", "2 3", "8 3 2 3"];

type XmlWriter = Writer<Vec<u8>>;

/// A round number of the form 1, 2 or 5 × 10ⁿ at or above `value`.
fn nice_step(value: f64) -> f64 {
    if value <= 0.0 || !value.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|factor| factor * magnitude)
        .find(|step| *step >= value)
        .unwrap_or(10.0 * magnitude)
}

/// A value as a label: whole numbers without decimals, others with one.
fn number(value: f64) -> String {
    if (value - value.round()).abs() < 1e-9 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

fn time_label(at: i64) -> String {
    OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|at| {
            at.format(format_description!("[month]-[day] [hour]:[minute]"))
                .ok()
        })
        .unwrap_or_default()
}

/// Writes `<name attrs…>text</name>`; writing into a Vec cannot fail.
fn text_element(writer: &mut XmlWriter, name: &str, attributes: &[(&str, &str)], text: &str) {
    let _ = writer
        .create_element(name)
        .with_attributes(attributes.iter().copied())
        .write_text_content(BytesText::new(text));
}

fn empty_element(writer: &mut XmlWriter, name: &str, attributes: &[(&str, &str)]) {
    let _ = writer
        .create_element(name)
        .with_attributes(attributes.iter().copied())
        .write_empty();
}

/// Draws `chart` as one SVG document (640×320 user units, scalable).
pub fn line_chart(chart: &Chart) -> String {
    let points = chart.series.iter().flat_map(|series| series.points.iter());
    let (mut first, mut last, mut highest) = (i64::MAX, i64::MIN, 0f64);
    for &(at, value) in points {
        first = first.min(at);
        last = last.max(at);
        if value.is_finite() {
            highest = highest.max(value);
        }
    }
    let empty = first > last;
    // Four steps up the y axis, the top a round number.
    let step = nice_step(highest / 4.0);
    let top = (step * (highest / step).ceil()).max(step);
    let span = if empty {
        1.0
    } else {
        last.saturating_sub(first).max(1) as f64
    };
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let x_of = |at: i64| LEFT + at.saturating_sub(first) as f64 / span * plot_width;
    let y_of = |value: f64| TOP + plot_height - value.max(0.0) / top * plot_height;

    let description = if empty {
        format!("{}: no data yet.", chart.title)
    } else {
        let names: Vec<&str> = chart.series.iter().map(|s| s.label.as_str()).collect();
        format!(
            "{} from {} to {} UTC, in {}: {}.",
            chart.title,
            time_label(first),
            time_label(last),
            chart.unit,
            names.join(", ")
        )
    };
    let viewbox = format!("0 0 {WIDTH} {HEIGHT}");
    // Ids unique to what is drawn, so several charts on one page keep their own labels.
    let digest = Sha256::digest(format!("{}\n{description}", chart.title).as_bytes());
    let id: String = digest[..6]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let (title_id, desc_id) = (format!("chart-{id}-title"), format!("chart-{id}-desc"));
    let mut writer = Writer::new(Vec::new());
    let _ = writer
        .create_element("svg")
        .with_attributes([
            ("xmlns", "http://www.w3.org/2000/svg"),
            ("viewBox", viewbox.as_str()),
            ("role", "img"),
            ("aria-labelledby", title_id.as_str()),
            ("aria-describedby", desc_id.as_str()),
            ("font-family", "sans-serif"),
            ("font-size", "11"),
        ])
        .write_inner_content(|writer| {
            text_element(writer, "title", &[("id", &title_id)], &chart.title);
            text_element(writer, "desc", &[("id", &desc_id)], &description);
            text_element(
                writer,
                "text",
                &[
                    ("x", "8"),
                    ("y", "20"),
                    ("font-size", "14"),
                    ("font-weight", "bold"),
                ],
                &chart.title,
            );
            if empty {
                let (x, y) = ((WIDTH / 2.0).to_string(), (HEIGHT / 2.0).to_string());
                text_element(
                    writer,
                    "text",
                    &[("x", &x), ("y", &y), ("text-anchor", "middle")],
                    "no data yet",
                );
                return Ok(());
            }
            axes(writer, top, step, first, last, &chart.unit, x_of, y_of);
            for (index, series) in chart.series.iter().enumerate() {
                draw_series(writer, index, series, &chart.unit, x_of, y_of);
            }
            Ok(())
        });
    String::from_utf8_lossy(&writer.into_inner()).into_owned()
}

/// The y grid with its labels, the x axis with three time labels, and the unit.
#[allow(clippy::too_many_arguments)]
fn axes(
    writer: &mut XmlWriter,
    top: f64,
    step: f64,
    first: i64,
    last: i64,
    unit: &str,
    x_of: impl Fn(i64) -> f64,
    y_of: impl Fn(f64) -> f64,
) {
    let _ = writer
        .create_element("g")
        .with_attributes([("class", "axes"), ("stroke", "#888"), ("stroke-width", "1")])
        .write_inner_content(|writer| {
            let mut value = 0.0;
            while value <= top + step / 2.0 {
                let y = format!("{:.1}", y_of(value));
                let (left, right) = (LEFT.to_string(), (WIDTH - RIGHT).to_string());
                let dash = if value == 0.0 { "none" } else { "2 4" };
                empty_element(
                    writer,
                    "line",
                    &[
                        ("x1", &left),
                        ("y1", &y),
                        ("x2", &right),
                        ("y2", &y),
                        ("stroke-dasharray", dash),
                    ],
                );
                let label_x = (LEFT - 6.0).to_string();
                text_element(
                    writer,
                    "text",
                    &[
                        ("class", "y-label"),
                        ("x", &label_x),
                        ("y", &y),
                        ("text-anchor", "end"),
                        ("dominant-baseline", "middle"),
                        ("stroke", "none"),
                        ("fill", "#333"),
                    ],
                    &number(value),
                );
                value += step;
            }
            let middle = first + last.saturating_sub(first) / 2;
            let times = if first == last {
                vec![first]
            } else {
                vec![first, middle, last]
            };
            let baseline = format!("{:.1}", HEIGHT - BOTTOM + 16.0);
            for at in times {
                let x = format!("{:.1}", x_of(at));
                text_element(
                    writer,
                    "text",
                    &[
                        ("class", "x-label"),
                        ("x", &x),
                        ("y", &baseline),
                        ("text-anchor", "middle"),
                        ("stroke", "none"),
                        ("fill", "#333"),
                    ],
                    &time_label(at),
                );
            }
            let unit_x = (WIDTH - RIGHT).to_string();
            text_element(
                writer,
                "text",
                &[
                    ("class", "unit"),
                    ("x", &unit_x),
                    ("y", "20"),
                    ("text-anchor", "end"),
                    ("stroke", "none"),
                    ("fill", "#333"),
                ],
                unit,
            );
            Ok(())
        });
}

/// One series: its line, a point with a tooltip for each value, and its legend entry.
fn draw_series(
    writer: &mut XmlWriter,
    index: usize,
    series: &Series,
    unit: &str,
    x_of: impl Fn(i64) -> f64,
    y_of: impl Fn(f64) -> f64,
) {
    let colour = COLOURS[index % COLOURS.len()];
    let dash = DASHES[index % DASHES.len()];
    let points: Vec<String> = series
        .points
        .iter()
        .filter(|(_, value)| value.is_finite())
        .map(|&(at, value)| format!("{:.1},{:.1}", x_of(at), y_of(value)))
        .collect();
    let class = format!("series series-{index}");
    let _ = writer
        .create_element("g")
        .with_attributes([("class", class.as_str()), ("fill", colour)])
        .write_inner_content(|writer| {
            let joined = points.join(" ");
            let _ = writer
                .create_element("polyline")
                .with_attributes([
                    ("points", joined.as_str()),
                    ("fill", "none"),
                    ("stroke", colour),
                    ("stroke-width", "2"),
                    ("stroke-dasharray", dash),
                ])
                .write_inner_content(|writer| {
                    text_element(writer, "title", &[], &series.label);
                    Ok(())
                });
            for &(at, value) in series.points.iter().filter(|(_, v)| v.is_finite()) {
                let (cx, cy) = (format!("{:.1}", x_of(at)), format!("{:.1}", y_of(value)));
                let tooltip = format!(
                    "{}: {} {unit} at {} UTC",
                    series.label,
                    number(value),
                    time_label(at)
                );
                let _ = writer
                    .create_element("circle")
                    .with_attributes([("cx", cx.as_str()), ("cy", cy.as_str()), ("r", "2.5")])
                    .write_inner_content(|writer| {
                        text_element(writer, "title", &[], &tooltip);
                        Ok(())
                    });
            }
            // The legend, below the x labels, one entry per series.
            let column = index % 3;
            let row = index / 3;
            let x = LEFT + column as f64 * 180.0;
            let y = HEIGHT - BOTTOM + 34.0 + row as f64 * 14.0;
            let (x1, x2, y_line) = (x.to_string(), (x + 24.0).to_string(), y.to_string());
            empty_element(
                writer,
                "line",
                &[
                    ("x1", &x1),
                    ("y1", &y_line),
                    ("x2", &x2),
                    ("y2", &y_line),
                    ("stroke", colour),
                    ("stroke-width", "2"),
                    ("stroke-dasharray", dash),
                ],
            );
            let text_x = (x + 30.0).to_string();
            text_element(
                writer,
                "text",
                &[
                    ("class", "legend"),
                    ("x", &text_x),
                    ("y", &y_line),
                    ("dominant-baseline", "middle"),
                    ("fill", "#333"),
                ],
                &series.label,
            );
            Ok(())
        });
}

/// Sizes over time (KiB, as `size_measurements` holds them), drawn in the largest of KiB,
/// MiB or GiB that keeps the biggest value at 1 or more.
pub fn size_chart(title: &str, label: &str, samples: &[SizeSample]) -> String {
    let largest = samples.iter().map(|sample| sample.kib).max().unwrap_or(0);
    let (unit, divisor) = if largest >= 1024 * 1024 {
        ("GiB", 1024.0 * 1024.0)
    } else if largest >= 1024 {
        ("MiB", 1024.0)
    } else {
        ("KiB", 1.0)
    };
    line_chart(&Chart {
        title: title.to_owned(),
        unit: unit.to_owned(),
        series: vec![Series {
            label: label.to_owned(),
            points: samples
                .iter()
                .map(|sample| (sample.at, sample.kib as f64 / divisor))
                .collect(),
        }],
    })
}

/// Mail per hour: received, sent (delivered here or to other servers), bounced, rejected.
pub fn traffic_chart(title: &str, hours: &[Traffic]) -> String {
    let series = |label: &str, value: fn(&Traffic) -> u64| Series {
        label: label.to_owned(),
        points: hours
            .iter()
            .map(|hour| (hour.start, value(hour) as f64))
            .collect(),
    };
    line_chart(&Chart {
        title: title.to_owned(),
        unit: "messages per hour".to_owned(),
        series: vec![
            series("received", |hour| hour.received),
            series("sent", |hour| hour.sent),
            series("bounced", |hour| hour.bounced),
            series("rejected", |hour| hour.rejected),
        ],
    })
}

#[cfg(test)]
mod tests {
    use quick_xml::Reader;
    use quick_xml::escape::resolve_predefined_entity;
    use quick_xml::events::Event;

    use super::*;

    /// What a test looks at in a drawn chart, read back with quick-xml.
    #[derive(Default, Debug)]
    struct Parsed {
        titles: Vec<String>,
        texts: Vec<String>,
        polylines: Vec<Vec<(f64, f64)>>,
        circles: usize,
        elements: Vec<String>,
    }

    /// Notes an element's name, and a polyline's points or a circle.
    fn element(parsed: &mut Parsed, start: &quick_xml::events::BytesStart<'_>) -> String {
        let name = start.name().into_inner().to_owned();
        if name == "polyline" {
            let attribute = start.try_get_attribute("points").unwrap().unwrap();
            let points = attribute
                .value
                .split(' ')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (x, y) = pair.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect();
            parsed.polylines.push(points);
        }
        if name == "circle" {
            parsed.circles += 1;
        }
        parsed.elements.push(name.clone());
        name
    }

    fn parse(svg: &str) -> Parsed {
        let mut reader = Reader::from_str(svg);
        let mut parsed = Parsed::default();
        let mut open: Vec<String> = Vec::new();
        // The text of the innermost open element (quick-xml splits it at references).
        let mut content = String::new();
        loop {
            match reader.read_event().unwrap() {
                Event::Start(start) => {
                    content.clear();
                    open.push(element(&mut parsed, &start));
                }
                Event::Empty(start) => {
                    element(&mut parsed, &start);
                }
                Event::Text(text) => content.push_str(&text.xml10_content()),
                Event::GeneralRef(reference) => match reference.resolve_char_ref().unwrap() {
                    Some(c) => content.push(c),
                    None => content
                        .push_str(resolve_predefined_entity(&reference.into_inner()).unwrap()),
                },
                Event::End(_) => {
                    let text = std::mem::take(&mut content);
                    match open.pop().as_deref() {
                        Some("title") => parsed.titles.push(text),
                        Some("text") => parsed.texts.push(text),
                        _ => {}
                    }
                }
                Event::Eof => return parsed,
                _ => {}
            }
        }
    }

    const T0: i64 = 1_796_256_000; // 2026-12-03 00:00 UTC

    #[test]
    fn points_labels_and_tooltips() {
        let chart = Chart {
            title: "Traffic <today> & \"more\"".to_owned(),
            unit: "messages".to_owned(),
            series: vec![
                Series {
                    label: "received".to_owned(),
                    points: vec![(T0, 0.0), (T0 + 3600, 8.0), (T0 + 7200, 3.0)],
                },
                Series {
                    label: "rejected".to_owned(),
                    points: vec![(T0, 1.0), (T0 + 3600, 0.0), (T0 + 7200, 2.0)],
                },
            ],
        };
        let svg = line_chart(&chart);
        assert!(!svg.contains("<script"), "{svg}");
        assert!(svg.contains("&lt;today&gt; &amp;"), "escaped: {svg}");
        let parsed = parse(&svg);
        assert_eq!(parsed.polylines.len(), 2);
        assert_eq!(parsed.polylines[0].len(), 3);
        assert_eq!(parsed.circles, 6);
        // Time runs left to right; the highest value is the highest point (smallest y).
        let received = &parsed.polylines[0];
        assert!(received[0].0 < received[1].0 && received[1].0 < received[2].0);
        assert!(received[1].1 < received[2].1 && received[2].1 < received[0].1);
        assert_eq!(received[0].0, LEFT);
        assert_eq!(received[2].0, WIDTH - RIGHT);
        assert_eq!(parsed.titles[0], "Traffic <today> & \"more\"");
        assert!(
            parsed
                .titles
                .contains(&"received: 8 messages at 12-03 01:00 UTC".to_owned()),
            "{:?}",
            parsed.titles
        );
        for label in [
            "received",
            "rejected",
            "12-03 00:00",
            "12-03 02:00",
            "0",
            "8",
        ] {
            assert!(
                parsed.texts.contains(&label.to_owned()),
                "{label}: {parsed:?}"
            );
        }
    }

    #[test]
    fn no_data_says_so() {
        let svg = line_chart(&Chart {
            title: "Size".to_owned(),
            unit: "MiB".to_owned(),
            series: vec![Series {
                label: "a@example.org".to_owned(),
                points: Vec::new(),
            }],
        });
        let parsed = parse(&svg);
        assert!(
            parsed.texts.contains(&"no data yet".to_owned()),
            "{parsed:?}"
        );
        assert!(parsed.polylines.is_empty());
    }

    #[test]
    fn sizes_get_a_readable_unit_and_traffic_four_lines() {
        let samples = [
            SizeSample { at: T0, kib: 2048 },
            SizeSample {
                at: T0 + 3600,
                kib: 3072,
            },
        ];
        let parsed = parse(&size_chart("Mailbox size", "a@example.org", &samples));
        assert!(parsed.texts.contains(&"MiB".to_owned()), "{parsed:?}");
        assert!(
            parsed
                .titles
                .contains(&"a@example.org: 3 MiB at 12-03 01:00 UTC".to_owned()),
            "{parsed:?}"
        );
        let hours = [
            Traffic {
                start: T0,
                received: 5,
                sent: 4,
                bounced: 1,
                rejected: 2,
            },
            Traffic {
                start: T0 + 3600,
                ..Traffic::default()
            },
        ];
        let parsed = parse(&traffic_chart("Last day", &hours));
        assert_eq!(parsed.polylines.len(), 4);
        for label in ["received", "sent", "bounced", "rejected"] {
            assert!(parsed.texts.contains(&label.to_owned()), "{label}");
        }
    }

    #[test]
    fn round_steps() {
        assert_eq!(nice_step(0.0), 1.0);
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(nice_step(2.0), 2.0);
        assert_eq!(nice_step(2.1), 5.0);
        assert_eq!(nice_step(730.0), 1000.0);
    }
}
