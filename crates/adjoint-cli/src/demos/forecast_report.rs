//! `results.md` and the plots of `adjoint demo forecast` (formatting only: every number comes
//! from [`ForecastReport`]).

use adjoint_nn::train::{Chart, Series};

use super::common::{self, RunDir};
use super::forecast::{ForecastReport, TICKERS};

/// A method's label, volatility forecast and VaR rows, as plotted.
pub type MethodSeries<'a> = (&'a str, &'a [[f64; 3]], &'a [[f64; 3]]);

/// The four methods the issue compares, in table order.
const MAIN: [&str; 4] = ["garch", "lstm_frozen", "lstm_online", "hybrid"];

/// The Markdown summary: overall table, VaR per stock with Kupiec's p, per-year table, the
/// online policy's validation, GARCH parameters and verdicts. `names`: method key → label.
pub fn summary(rep: &ForecastReport, names: &[(&str, &str)]) -> String {
    let m = |k: &str, metric: &str| rep.methods[k].get(metric).copied().unwrap_or(f64::NAN);
    let overall = common::table(
        &["method", "key", "MAE", "RMSE", "VaR99 exceed.", "Kupiec p (pooled)"],
        &names
            .iter()
            .map(|(k, n)| {
                vec![
                    n.to_string(),
                    k.to_string(),
                    format!("{:.4}", m(k, "mae")),
                    format!("{:.4}", m(k, "rmse")),
                    format!("{:.2}%", 100.0 * m(k, "var99_exceedance")),
                    format!("{:.3}", m(k, "kupiec_p")),
                ]
            })
            .collect::<Vec<_>>(),
    );
    let not_rejected = |k: &str| TICKERS.iter().filter(|t| m(k, &format!("kupiec_p_{t}")) >= 0.05).count();
    let mut head = vec!["method"];
    let stock_cols: Vec<String> = TICKERS.iter().map(|t| format!("{t} exceed. (Kupiec p)")).collect();
    head.extend(stock_cols.iter().map(String::as_str));
    head.push("not rejected at 5%");
    let per_stock = common::table(
        &head,
        &names
            .iter()
            .map(|(k, _)| {
                let mut row = vec![k.to_string()];
                row.extend(TICKERS.iter().map(|t| {
                    format!(
                        "{:.2}% ({:.3})",
                        100.0 * m(k, &format!("var99_exceedance_{t}")),
                        m(k, &format!("kupiec_p_{t}"))
                    )
                }));
                row.push(format!("{}/3", not_rejected(k)));
                row
            })
            .collect::<Vec<_>>(),
    );
    let mut year_head = vec!["year".to_string()];
    year_head.extend(MAIN.iter().map(|k| format!("{k} MAE / exceed. (p)")));
    let per_year = common::table(
        &year_head.iter().map(String::as_str).collect::<Vec<_>>(),
        &rep.per_year
            .iter()
            .map(|(y, by)| {
                let mut row = vec![y.clone()];
                row.extend(MAIN.iter().map(|k| {
                    let g = |x: &str| by[*k].get(x).copied().unwrap_or(f64::NAN);
                    format!("{:.3} / {:.2}% ({:.3})", g("mae"), 100.0 * g("var99_exceedance"), g("kupiec_p"))
                }));
                row
            })
            .collect::<Vec<_>>(),
    );
    let validation = common::table(
        &["candidate policy", "validation MAE", "updates", "lr at the end"],
        &rep.online_policy
            .validation
            .iter()
            .map(|s| {
                vec![
                    s.policy.name.clone(),
                    format!("{:.4}", s.mae),
                    s.updates.to_string(),
                    format!("{:.2e}", s.final_lr),
                ]
            })
            .collect::<Vec<_>>(),
    );
    let garch = rep
        .garch
        .iter()
        .map(|(t, g)| format!("{t}: ω = {:.4}, α = {:.4}, β = {:.4}", g.omega, g.alpha, g.beta))
        .collect::<Vec<_>>()
        .join("; ");
    let best = names.iter().min_by(|a, b| m(a.0, "mae").total_cmp(&m(b.0, "mae"))).expect("methods");
    let online_vs_frozen = if m("lstm_online", "mae") < m("lstm_frozen", "mae") {
        format!(
            "The online LSTM beats the frozen one: MAE {:.4} vs {:.4}.",
            m("lstm_online", "mae"),
            m("lstm_frozen", "mae")
        )
    } else {
        format!(
            "The online LSTM does NOT beat the frozen one: MAE {:.4} vs {:.4}{}.",
            m("lstm_online", "mae"),
            m("lstm_frozen", "mae"),
            if rep.online_policy.chosen.starts_with("frozen") {
                " (the validation walk chose no updates, so they are the same model)"
            } else {
                ""
            }
        )
    };
    let risk_best = MAIN.iter().map(|k| format!("{k} {}/3", not_rejected(k))).collect::<Vec<_>>().join(", ");
    format!(
        "Next-day volatility and 99% one-day VaR of {}, walk-forward test {} → {} ({} days).\n\
         Volatility forecasts are scored against realised |log-return| (%); MAE/RMSE average the \
         three stocks. VaR99 = −(1% quantile of standardised training residuals) × the method's \
         scale; exceedance = a day with return < −VaR (nominal 1%). Kupiec's POF test: p < 0.05 \
         rejects the 1% rate (pooled p treats the three stocks' days as independent).\n\n\
         {overall}\n\
         Per stock, VaR99 exceedance rate and Kupiec p:\n\n{per_stock}\n\
         Per year (test days of that year; exceedance pooled over the three stocks):\n\n{per_year}\n\
         Online policy (chosen on a validation walk {} → {} inside the training years, model trained \
         on the days before it): **{}**\n\n{validation}\n\
         GARCH(1,1) on the training days: {garch}.\n\n\
         Lowest MAE: {} ({:.4}). {online_vs_frozen}\n\
         Stocks whose VaR99 exceedance rate Kupiec's test does not reject at 5%: {risk_best}.\n",
        TICKERS.join(", "),
        rep.test_period.0,
        rep.test_period.1,
        rep.days,
        rep.online_policy.validation_period.0,
        rep.online_policy.validation_period.1,
        rep.online_policy.chosen,
        best.1,
        m(best.0, "mae"),
    )
}

/// `forecast_vs_truth.png` (AAPL, 20-day rolling means), `rolling_error.png` (rolling 60-day
/// MAE per method) and `var99.png` (AAPL returns and −VaR of the four main methods).
/// `series`: (label, volatility forecast, VaR) per method, in the report's order.
pub fn plots(
    dir: &RunDir,
    truth: &[[f64; 3]],
    returns: &[[f64; 3]],
    series: &[MethodSeries<'_>],
) -> Result<(), String> {
    let roll = |v: &[f64], k: usize| -> Vec<(f64, f64)> {
        (k..=v.len()).map(|i| (i as f64, v[i - k..i].iter().sum::<f64>() / k as f64)).collect()
    };
    let col0 = |p: &[[f64; 3]]| p.iter().map(|x| x[0]).collect::<Vec<f64>>();
    // The four main methods sit at positions 3.. of the report's order.
    let main = &series[series.len().saturating_sub(4)..];
    let k = 20.min(truth.len());
    let mut chart = Chart::new("AAPL next-day |return| (%), 20-day rolling mean")
        .x_label("walk-forward day")
        .y_label("|log-return| (%)")
        .series(Series::new("truth", roll(&col0(truth), k)));
    for (name, vol, _) in main {
        chart = chart.series(Series::new(*name, roll(&col0(vol), k)));
    }
    chart.save(dir.file("forecast_vs_truth")).map_err(|e| e.to_string())?;
    let mut chart = Chart::new("Rolling 60-day MAE, mean over AAPL, IBM, MSFT")
        .x_label("walk-forward day")
        .y_label("MAE (%)");
    let k = 60.min(truth.len());
    for (name, vol, _) in series {
        let ae: Vec<f64> = vol
            .iter()
            .zip(truth)
            .map(|(a, b)| (0..3).map(|s| (a[s] - b[s]).abs()).sum::<f64>() / 3.0)
            .collect();
        chart = chart.series(Series::new(*name, roll(&ae, k)));
    }
    chart.save(dir.file("rolling_error")).map_err(|e| e.to_string())?;
    let points = |v: Vec<f64>| v.into_iter().enumerate().map(|(i, y)| (i as f64, y)).collect::<Vec<_>>();
    let mut chart = Chart::new("AAPL daily return (%) and −VaR99 forecasts")
        .x_label("walk-forward day")
        .y_label("return (%)")
        .series(Series::new("return", points(col0(returns))));
    for (name, _, var) in main {
        chart = chart
            .series(Series::new(format!("−VaR99 {name}"), points(col0(var).iter().map(|v| -v).collect())));
    }
    chart.save(dir.file("var99")).map_err(|e| e.to_string())?;
    Ok(())
}
