//! The WebDriver server: Debian's `chromedriver`, started on a free loopback port for the length
//! of one test and killed (with the Chromium it started) when dropped, also while a failing test
//! unwinds.

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long chromedriver may take to say it is ready.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// A running chromedriver. Its process group holds the browsers it starts, so that dropping it
/// ends them all.
pub struct Chromedriver {
    child: Child,
    port: u16,
}

impl Chromedriver {
    /// Starts chromedriver; its log goes to `log_path`. Fails with a clear message when it is not
    /// installed (`scripts/test` installs it).
    pub async fn start(log_path: &Path) -> Result<Self, String> {
        let port = free_port()?;
        let log = File::create(log_path)
            .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
        let log_err = log
            .try_clone()
            .map_err(|e| format!("cannot share {}: {e}", log_path.display()))?;
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Its own process group: the browsers it starts live in it too, so Drop can end them.
            .process_group(0)
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start chromedriver ({e}); the browser tests need Debian's chromium and \
                     chromium-driver: run scripts/test, which installs them"
                )
            })?;
        let mut driver = Self { child, port };
        driver.wait_until_ready(log_path).await?;
        Ok(driver)
    }

    /// The WebDriver URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Polls `/status` until chromedriver reports itself ready.
    async fn wait_until_ready(&mut self, log_path: &Path) -> Result<(), String> {
        let client = reqwest::Client::new();
        let status_url = format!("{}/status", self.url());
        let started = Instant::now();
        loop {
            if let Ok(Some(exit)) = self.child.try_wait() {
                return Err(format!(
                    "chromedriver exited at start ({exit}); see {}",
                    log_path.display()
                ));
            }
            if let Ok(response) = client.get(&status_url).send().await
                && let Ok(status) = response.json::<serde_json::Value>().await
                && status["value"]["ready"] == true
            {
                return Ok(());
            }
            if started.elapsed() > READY_WITHIN {
                return Err(format!(
                    "chromedriver did not become ready within {READY_WITHIN:?}; see {}",
                    log_path.display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // The whole group: chromedriver and every Chromium process it started.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago (the kernel's choice for port 0).
fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free loopback port: {e}"))?;
    listener
        .local_addr()
        .map(|address| address.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}
