//! One headless Chromium session over WebDriver, with what the flow needs around it: pages by
//! path, explicit waits for conditions, numbered full-page screenshots and page weights.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// The longest any single condition is waited for (a whole simulated run included).
pub const WAIT_AT_MOST: Duration = Duration::from_secs(45);
/// How often a condition is checked while waiting.
const POLL_EVERY: Duration = Duration::from_millis(100);
/// Screenshots never grow taller than this, however long the page.
const MAX_SHOT_HEIGHT: u32 = 6000;

/// A window size: the desk (clinician, lab) or the bedside tablet (operator).
#[derive(Clone, Copy, Debug)]
pub struct Viewport {
    pub width: u32,
    pub height: u32,
}

pub const DESKTOP: Viewport = Viewport {
    width: 1280,
    height: 900,
};
/// A 10-inch tablet held upright (CSS pixels).
pub const TABLET: Viewport = Viewport {
    width: 820,
    height: 1180,
};

/// What one page weighed when the browser loaded it.
#[derive(Debug)]
pub struct PageWeight {
    pub step: String,
    pub path: String,
    /// The HTML document: bytes on the wire (body as encoded, e.g. gzip) and decoded.
    pub html_encoded: u64,
    pub html_decoded: u64,
    /// Every subresource (stylesheet, scripts, fetches, event stream so far).
    pub resources: Vec<ResourceWeight>,
}

#[derive(Debug)]
pub struct ResourceWeight {
    pub name: String,
    pub kind: String,
    pub encoded: u64,
    pub decoded: u64,
    /// Bytes that crossed the network on this visit (0 when served from the browser cache).
    pub transferred: u64,
}

pub struct Browser {
    client: Client,
    base_url: String,
    artefacts: PathBuf,
    shots: usize,
    viewport: Viewport,
    pub weights: Vec<PageWeight>,
}

impl Browser {
    /// Opens a headless Chromium session through the chromedriver at `webdriver`.
    pub async fn open(webdriver: &str, base_url: String, artefacts: &Path) -> Result<Self> {
        let viewport = DESKTOP;
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-background-networking",
                    "--disable-extensions",
                    "--disable-sync",
                    "--disable-component-update",
                    "--metrics-recording-only",
                    "--password-store=basic",
                    "--hide-scrollbars",
                    "--force-device-scale-factor=1",
                    format!("--window-size={},{}", viewport.width, viewport.height),
                ]
            }
        });
        let Value::Object(capabilities) = capabilities else {
            bail!("capabilities are a JSON object");
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(webdriver)
            .await
            .context("WebDriver session with headless Chromium")?;
        Ok(Self {
            client,
            base_url,
            artefacts: artefacts.to_owned(),
            shots: 0,
            viewport,
            weights: Vec::new(),
        })
    }

    /// Ends the WebDriver session (Chromium quits).
    pub async fn close(self) -> Result<()> {
        self.client.close().await.context("closing the session")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Resizes the window to a viewport of this size.
    pub async fn use_viewport(&mut self, viewport: Viewport) -> Result<()> {
        self.viewport = viewport;
        self.set_viewport(viewport.width, viewport.height).await
    }

    /// Sets the window so that its *viewport* has this size (the window adds its frame).
    async fn set_viewport(&self, width: u32, height: u32) -> Result<()> {
        self.client.set_window_size(width, height).await?;
        let inner = self
            .client
            .execute("return [window.innerWidth, window.innerHeight];", vec![])
            .await?;
        let (inner_w, inner_h) = (
            inner[0].as_u64().unwrap_or(u64::from(width)),
            inner[1].as_u64().unwrap_or(u64::from(height)),
        );
        let frame_w = u64::from(width).saturating_sub(inner_w);
        let frame_h = u64::from(height).saturating_sub(inner_h);
        if frame_w > 0 || frame_h > 0 {
            self.client
                .set_window_size(
                    width + u32::try_from(frame_w)?,
                    height + u32::try_from(frame_h)?,
                )
                .await?;
        }
        Ok(())
    }

    /// Loads a page by path (WebDriver returns once it has loaded) and checks that it is one of
    /// the instrument's pages.
    pub async fn goto(&self, path: &str) -> Result<()> {
        self.client
            .goto(&self.url(path))
            .await
            .with_context(|| format!("opening {path}"))?;
        self.find("main#main")
            .await
            .with_context(|| format!("{path} shows one of the instrument's pages"))?;
        Ok(())
    }

    /// The current path (and query).
    pub async fn path(&self) -> Result<String> {
        let url = self.client.current_url().await?;
        Ok(match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        })
    }

    /// Waits until the browser is on a page whose path starts with `prefix` (after a click that
    /// navigates, the old page may still be there for a moment).
    pub async fn wait_for_path(&self, prefix: &str) -> Result<()> {
        let started = std::time::Instant::now();
        loop {
            if self.path().await?.starts_with(prefix) {
                return Ok(());
            }
            if started.elapsed() > WAIT_AT_MOST {
                bail!(
                    "still on {} after {WAIT_AT_MOST:?}, waiting for {prefix}",
                    self.path().await?
                );
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Waits until an element matching the CSS selector exists.
    pub async fn wait_for(&self, css: &str) -> Result<Element> {
        self.client
            .wait()
            .at_most(WAIT_AT_MOST)
            .every(POLL_EVERY)
            .for_element(Locator::Css(css))
            .await
            .with_context(|| format!("waiting for `{css}`"))
    }

    /// Waits until an element matching the XPath exists.
    pub async fn wait_for_xpath(&self, xpath: &str) -> Result<Element> {
        self.client
            .wait()
            .at_most(WAIT_AT_MOST)
            .every(POLL_EVERY)
            .for_element(Locator::XPath(xpath))
            .await
            .with_context(|| format!("waiting for {xpath}"))
    }

    /// The element matching the CSS selector, now.
    pub async fn find(&self, css: &str) -> Result<Element> {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => Ok(element),
            Err(error) => {
                let page = self.path_or_unknown().await;
                Err(error).with_context(|| format!("no `{css}` on {page}"))
            }
        }
    }

    /// Every element matching the CSS selector, now.
    pub async fn find_all(&self, css: &str) -> Result<Vec<Element>> {
        Ok(self.client.find_all(Locator::Css(css)).await?)
    }

    /// The visible text of the page's main element.
    pub async fn main_text(&self) -> Result<String> {
        Ok(self.find("main#main").await?.text().await?)
    }

    /// Types into the field (cleared first).
    pub async fn fill(&self, css: &str, text: &str) -> Result<()> {
        let field = self.find(css).await?;
        field.clear().await?;
        field
            .send_keys(text)
            .await
            .with_context(|| format!("typing into `{css}`"))
    }

    /// Sets a field's value directly (date pickers, which take typed text per locale).
    pub async fn set_value(&self, css: &str, value: &str) -> Result<()> {
        let field = self.find(css).await?;
        let args = vec![serde_json::to_value(&field)?, json!(value)];
        self.client
            .execute(
                "arguments[0].value = arguments[1]; \
                 arguments[0].dispatchEvent(new Event('input', {bubbles: true})); \
                 arguments[0].dispatchEvent(new Event('change', {bubbles: true}));",
                args,
            )
            .await?;
        Ok(())
    }

    /// Clicks the element (WebDriver does not wait for a page the click may load: see
    /// [`Self::submit`]).
    pub async fn click(&self, css: &str) -> Result<()> {
        self.find(css)
            .await?
            .click()
            .await
            .with_context(|| format!("clicking `{css}`"))
    }

    /// Clicks a button that loads a new page (a form's submit) and waits until the new page is
    /// there: the old page is marked before the click and the wait ends when a page without
    /// the mark has its `main`. (Waiting for an element instead can find it on the old page,
    /// which is then replaced under the test's hands.)
    pub async fn submit(&self, css: &str) -> Result<()> {
        self.execute("document.documentElement.dataset.leaving = '1'; return null;")
            .await?;
        self.click(css).await?;
        let started = std::time::Instant::now();
        loop {
            let arrived = self
                .execute(
                    "return document.documentElement.dataset.leaving === undefined \
                     && document.readyState === 'complete' \
                     && document.querySelector('main#main') !== null;",
                )
                .await
                // A page being replaced may refuse the script for a moment: ask again.
                .map(|value| value.as_bool() == Some(true))
                .unwrap_or(false);
            if arrived {
                return Ok(());
            }
            if started.elapsed() > WAIT_AT_MOST {
                bail!("no new page after submitting `{css}` in {WAIT_AT_MOST:?}");
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Every table cell of the page's tables is shown (nothing hidden by CSS) and the page does
    /// not scroll sideways as a whole at the current window's width (a wide table scrolls in
    /// its own box).
    pub async fn no_hidden_columns(&self) -> Result<()> {
        let hidden = self
            .execute(
                "return [...document.querySelectorAll('main td, main th')]\
                 .filter(c => getComputedStyle(c).display === 'none' || getComputedStyle(c).visibility === 'hidden').length;",
            )
            .await?;
        if hidden != json!(0) {
            bail!(
                "{hidden} table cells are hidden on {}",
                self.path_or_unknown().await
            );
        }
        let width = self
            .execute("return document.documentElement.scrollWidth;")
            .await?
            .as_u64()
            .unwrap_or(0);
        if width > u64::from(self.viewport.width) {
            bail!(
                "{} is {width} px wide on a {} px screen",
                self.path_or_unknown().await,
                self.viewport.width
            );
        }
        Ok(())
    }

    /// Runs a script in the page and returns its value.
    pub async fn execute(&self, script: &str) -> Result<Value> {
        Ok(self.client.execute(script, vec![]).await?)
    }

    async fn path_or_unknown(&self) -> String {
        self.path()
            .await
            .unwrap_or_else(|_| "an unknown page".to_owned())
    }

    /// A file in this session's artefact directory.
    pub fn artefact(&self, name: &str) -> PathBuf {
        self.artefacts.join(name)
    }

    /// Saves a full-page screenshot as `NN-name.png` and returns its path.
    pub async fn shot(&mut self, name: &str) -> Result<PathBuf> {
        self.shots += 1;
        let file = self.artefacts.join(format!("{:02}-{name}.png", self.shots));
        // WebDriver shoots the viewport: make the viewport as tall as the page, then restore it.
        let height = self
            .execute(
                "return Math.ceil(Math.max(document.documentElement.scrollHeight, \
                 document.body ? document.body.scrollHeight : 0));",
            )
            .await?
            .as_u64()
            .unwrap_or(u64::from(self.viewport.height));
        let tall = u32::try_from(height)
            .unwrap_or(MAX_SHOT_HEIGHT)
            .clamp(self.viewport.height, MAX_SHOT_HEIGHT);
        if tall > self.viewport.height {
            self.set_viewport(self.viewport.width, tall).await?;
        }
        let png = self.client.screenshot().await;
        if tall > self.viewport.height {
            self.set_viewport(self.viewport.width, self.viewport.height)
                .await?;
        }
        std::fs::write(&file, png.context("screenshot")?)
            .with_context(|| format!("writing {}", file.display()))?;
        Ok(file)
    }

    /// Saves the current page as it would print (A4 PDF), `NN-name.pdf`.
    pub async fn print_pdf(&mut self, name: &str) -> Result<PathBuf> {
        self.shots += 1;
        let file = self.artefacts.join(format!("{:02}-{name}.pdf", self.shots));
        let pdf = self
            .client
            .print(fantoccini::wd::PrintConfiguration::default())
            .await
            .context("printing to PDF")?;
        std::fs::write(&file, pdf).with_context(|| format!("writing {}", file.display()))?;
        Ok(file)
    }

    /// Screenshots the page as a step and records its weight.
    pub async fn step(&mut self, name: &str) -> Result<()> {
        self.shot(name).await?;
        self.record_weight(name).await
    }

    /// Reads the Performance API's navigation and resource entries of the current page.
    async fn record_weight(&mut self, step: &str) -> Result<()> {
        let entries = self
            .execute(
                "const n = performance.getEntriesByType('navigation')[0] || {}; \
                 return { path: location.pathname + location.search, \
                   html: [n.encodedBodySize || 0, n.decodedBodySize || 0], \
                   resources: performance.getEntriesByType('resource').map(r => [ \
                     new URL(r.name).pathname, r.initiatorType, r.encodedBodySize, \
                     r.decodedBodySize, r.transferSize]) };",
            )
            .await?;
        let number = |v: &Value| v.as_f64().map_or(0, |f| f as u64);
        let resources = entries["resources"]
            .as_array()
            .ok_or_else(|| anyhow!("resource entries: {entries}"))?
            .iter()
            .map(|r| ResourceWeight {
                name: r[0].as_str().unwrap_or("?").to_owned(),
                kind: r[1].as_str().unwrap_or("?").to_owned(),
                encoded: number(&r[2]),
                decoded: number(&r[3]),
                transferred: number(&r[4]),
            })
            .collect();
        self.weights.push(PageWeight {
            step: step.to_owned(),
            path: entries["path"].as_str().unwrap_or("?").to_owned(),
            html_encoded: number(&entries["html"][0]),
            html_decoded: number(&entries["html"][1]),
            resources,
        });
        Ok(())
    }

    /// The page weights as a table, one page per block. A subresource the browser revalidated
    /// from its cache (a 304 for its ETag) reports no body on that visit; the table counts it at
    /// the size it had when it was fetched in full, so that each total is what a first visit
    /// weighs.
    pub fn weights_report(&self) -> String {
        let mut full_size: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for resource in self.weights.iter().flat_map(|page| &page.resources) {
            let size = full_size.entry(&resource.name).or_default();
            size.0 = size.0.max(resource.encoded);
            size.1 = size.1.max(resource.decoded);
        }
        let mut report = String::from(
            "Page weights in bytes. encoded = the body as served (compressed when the server \
             compresses it), decoded = after decompression; transferred = bytes that crossed the \
             network on this visit, headers included (about 300 for a 304 revalidation). Event \
             streams and fetches report 0 while they are open or were empty.\n\n",
        );
        for page in &self.weights {
            let mut seen = BTreeSet::new();
            let (mut total_encoded, mut total_decoded) = (page.html_encoded, page.html_decoded);
            for resource in &page.resources {
                if seen.insert(resource.name.as_str()) {
                    let (encoded, decoded) = full_size[resource.name.as_str()];
                    total_encoded += encoded;
                    total_decoded += decoded;
                }
            }
            let _ = writeln!(
                report,
                "{:<24} {:<22} HTML {:>8} encoded {:>8} decoded | with subresources {:>8} encoded {:>8} decoded",
                page.step,
                page.path,
                page.html_encoded,
                page.html_decoded,
                total_encoded,
                total_decoded
            );
            for resource in &page.resources {
                let (encoded, decoded) = full_size[resource.name.as_str()];
                let _ = writeln!(
                    report,
                    "    {:<8} {:<36} {:>8} encoded {:>8} decoded {:>8} transferred",
                    resource.kind, resource.name, encoded, decoded, resource.transferred
                );
            }
        }
        report
    }
}
