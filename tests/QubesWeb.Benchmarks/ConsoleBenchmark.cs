using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Xml.Linq;
using Microsoft.Playwright;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Libvirt;
using QubesWeb.IntegrationTests.RealHypervisor;
using QubesWeb.Services.Estate;

// The real lane's guest is made with Linux file modes (TestGuest), as in the integration tests' assembly.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace QubesWeb.Benchmarks;

/// <summary>
/// Issue #17, on the real-hypervisor lane's small guest (software emulation, as the lane's tests run it):
/// (a) keystroke to echo on the serial console through the whole path (Chromium's key event -> xterm.js -> WebSocket ->
/// relay -> libvirt stream -> the guest's shell -> back -> the row drawn in the page), against the same echo through
/// <c>virsh console</c> on a pty in the same run; goal p95 under 50 ms.
/// (b) frame updates of a full 1024x768 screen that changes all the time, reaching noVNC's canvas per second, against
/// what a bare RFB client reading libvirt's graphics descriptor directly receives and what the guest writes; goal
/// 10 fps or more.
/// </summary>
public static class ConsoleBenchmark
{
    private const int Keys = 120, Warmup = 10;
    private static readonly TimeSpan FrameWindow = TimeSpan.FromSeconds(15);

    public static async Task RunAsync()
    {
        var daemon = new RealLibvirtd();
        await daemon.InitializeAsync();
        var guest = new TestGuest();
        await guest.InitializeAsync();
        var name = "qwt-bench-" + Guid.NewGuid().ToString("N")[..10];
        await using var host = await ConsoleHost.StartAsync(RealLibvirtd.Uri, demo: false);
        using var connect = Connect.Open(RealLibvirtd.Uri);
        try
        {
            // The lane's guest as the tests run it, under software emulation (qemu): under kvm on this machine's nested
            // virtualisation it never reached its shell.
            using var domain = RealGuestQube.Define(connect, guest, name);
            var type = XDocument.Parse(domain.GetXmlDesc()).Root!.Attribute("type")!.Value;
            await RealGuestQube.AddToInventoryAsync(host, name, domain);
            domain.Create();
            await host.Get<EstateMonitor>().WaitForStateAsync(name, s => s == RunState.Running, TimeSpan.FromSeconds(120), CancellationToken.None);
            Console.WriteLine($"Console benchmark: the lane's small guest {name} ({type}), console at {host.BaseUrl}");

            var virsh = await VirshEchoAsync(name);
            using var playwright = await Playwright.CreateAsync();
            await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
            {
                ExecutablePath = "/usr/bin/chromium", Headless = true,
                Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
            });
            var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1440, Height = 1000 } });
            var (cookie, session) = host.NewSessionCookie();
            await page.Context.AddCookiesAsync([new Cookie { Name = cookie, Value = session, Url = host.BaseUrl }]);
            // Counts what reaches the visible canvas: noVNC draws each finished frame update onto it from its back buffer.
            await page.AddInitScriptAsync(CanvasCounter);
            var web = await BrowserEchoAsync(page, host, name);

            Console.WriteLine(virsh);
            Console.WriteLine(web);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"keystroke to echo, browser vs virsh console: p50 {web.Median / virsh.Median:0.00}x, p95 {web.P95 / virsh.P95:0.00}x   goal p95 < 50 ms: {(web.P95 < 50 ? "MET" : "MISSED")} ({web.P95:0.0} ms)"));

            await FramesAsync(page, host, name, domain);
        }
        finally
        {
            await host.StopAsync();
            RealLibvirtd.Remove(name);
            await guest.DisposeAsync();
        }
    }

    /// <summary>
    /// virsh console on a pty: virsh wants a terminal, so Python's pty.spawn runs it (an argument list, no shell) and
    /// relays its pipes to the pty, as `script` would. One keystroke at a time, timed from the write to its echo.
    /// </summary>
    private static async Task<Sample> VirshEchoAsync(string name)
    {
        var psi = new ProcessStartInfo("/usr/bin/python3")
        {
            UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        foreach (var a in new[] { "-c", "import pty, sys; pty.spawn(sys.argv[1:])", "virsh", "-c", RealLibvirtd.Uri, "console", name, "--force" })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var output = new StringBuilder();
        var changed = new SemaphoreSlim(0);
        var reader = Task.Run(async () =>
        {
            var buffer = new char[4096];
            int n;
            while ((n = await p.StandardOutput.ReadAsync(buffer)) > 0)
            {
                lock (output) output.Append(buffer, 0, n);
                changed.Release();
            }
        });
        async Task WaitForAsync(Func<string, bool> seen, TimeSpan timeout)
        {
            var until = DateTime.UtcNow + timeout;
            while (true)
            {
                lock (output) if (seen(output.ToString())) return;
                var left = until - DateTime.UtcNow;
                if (left <= TimeSpan.Zero || !await changed.WaitAsync(left))
                    throw new TimeoutException($"virsh console: {output}");
            }
        }
        var stdin = p.StandardInput.BaseStream;
        try
        {
            await WaitForAsync(o => o.Contains("Escape character", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
            // The shell answers once it runs (a line typed before that is lost: the port drops what nobody reads).
            await Eventually.UntilAsync(async () =>
            {
                await stdin.WriteAsync("echo qw-$((40+2))\r"u8.ToArray());
                await stdin.FlushAsync();
                try
                {
                    await WaitForAsync(o => o.Contains("qw-42\r\n", StringComparison.Ordinal), TimeSpan.FromSeconds(2));
                    return true;
                }
                catch (TimeoutException)
                {
                    return false;
                }
            }, "the guest's shell on virsh console", TimeSpan.FromSeconds(60), () => { lock (output) return output.ToString(); });
            await stdin.WriteAsync("#"u8.ToArray());
            await stdin.FlushAsync();
            await WaitForAsync(o => o.EndsWith('#'), TimeSpan.FromSeconds(30));
            var samples = new List<double>();
            for (var i = 0; i < Warmup + Keys; i++)
            {
                var key = (char)('a' + i % 26);
                int before;
                lock (output) before = output.Length;
                var sw = Stopwatch.StartNew();
                await stdin.WriteAsync(new[] { (byte)key });
                await stdin.FlushAsync();
                await WaitForAsync(o => o.Length > before && o.AsSpan(before).Contains(key), TimeSpan.FromSeconds(10));
                if (i >= Warmup) samples.Add(sw.Elapsed.TotalMilliseconds);
            }
            await stdin.WriteAsync("\u0015"u8.ToArray()); // Ctrl-U: the line typed is dropped
            await stdin.FlushAsync();
            await stdin.WriteAsync("\u001d"u8.ToArray()); // virsh's escape, Ctrl-], alone in its read
            await stdin.FlushAsync();
            try
            {
                await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }
            catch (TimeoutException)
            {
                // Killed below: the console is let go of all the same.
            }
            return new Sample("echo over virsh console (pty)", [.. samples]);
        }
        finally
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
            await reader.WaitAsync(TimeSpan.FromSeconds(5));
        }
    }

    /// <summary>In the page: a key's time from its keydown event to the terminal's rows showing it.</summary>
    private const string EchoProbe = """
        () => {
          const host = document.querySelector('#console-terminal');
          const st = { t0: 0, want: null, resolve: null };
          document.addEventListener('keydown', () => { st.t0 = performance.now(); }, true);
          // The screen's text (rows joined: a line that wraps stays one run of characters), up to the cursor's end.
          const text = () => (host.querySelector('.xterm-rows')?.textContent ?? '').replace(/\u00a0/g, ' ').trimEnd();
          const check = () => {
            if (st.want === null) return;
            if (text().endsWith(st.want)) {
              const t = performance.now() - st.t0; st.want = null; st.resolve(t);
            }
          };
          new MutationObserver(check).observe(host, { subtree: true, childList: true, characterData: true, attributes: true });
          window.__qwArm = (want) => { st.done = new Promise(r => { st.resolve = r; }); st.want = want; };
          // A key whose echo is not seen within 5 s counts as lost (-1), with the row as it stands, to look at.
          window.__qwDone = () => Promise.race([st.done, new Promise(r => setTimeout(() => r({ ms: -1, row: text().slice(-200) }), 5000))])
            .then(v => typeof v === 'number' ? { ms: v, row: '' } : v);
        }
        """;

    private static async Task<Sample> BrowserEchoAsync(IPage page, ConsoleHost host, string name)
    {
        await page.GotoAsync($"{host.BaseUrl}/qubes/{name}/console");
        await page.Locator("#console-status[data-console-state=Open]").WaitForAsync(new() { Timeout = 60_000 });
        await page.Locator("#console-terminal").ClickAsync();
        await page.EvaluateAsync(EchoProbe);
        await page.Keyboard.PressAsync("Enter");
        await page.Keyboard.TypeAsync("#");
        var typed = "#";
        var samples = new List<double>();
        for (var i = 0; i < Warmup + Keys; i++)
        {
            var key = (char)('a' + i % 26);
            typed += key;
            // The line so far, its last 20 characters: what the row under the cursor ends with once the echo is drawn.
            await page.EvaluateAsync("w => window.__qwArm(w)", typed[^Math.Min(typed.Length, 20)..]);
            await page.Keyboard.PressAsync(key.ToString());
            var echo = await page.EvaluateAsync<Echo>("() => window.__qwDone()");
            if (echo.Ms < 0) throw new TimeoutException($"No echo of '{key}' in the browser within 5 s; the screen ends: '{echo.Row}'");
            if (i >= Warmup) samples.Add(echo.Ms);
        }
        await page.Keyboard.PressAsync("Control+U");
        return new Sample("echo in the browser (xterm.js, socket)", [.. samples]);
    }

    /// <summary>Counts drawImage calls on canvases in the page (noVNC's visible one), and those that cover it all.</summary>
    private const string CanvasCounter = """
        (() => {
          const draw = CanvasRenderingContext2D.prototype.drawImage;
          const f = window.__qwFrames = { all: 0, full: 0 };
          CanvasRenderingContext2D.prototype.drawImage = function (...a) {
            if (this.canvas.isConnected) {
              f.all++;
              const w = a.length >= 9 ? a[7] : this.canvas.width, h = a.length >= 9 ? a[8] : this.canvas.height;
              if (w * h >= 0.9 * this.canvas.width * this.canvas.height) f.full++;
            }
            return draw.apply(this, a);
          };
        })();
        """;

    /// <summary>
    /// The guest's shell, typed through the console's serial socket. Debian's cloud kernel has no framebuffer driver for
    /// qemu's VGA (CONFIG_DRM is off, so no bochs-drm; no vesafb, no simplefb; only efifb, which needs UEFI firmware the
    /// lane does not install), and /dev/mem's write() stops at the end of RAM (only mmap reaches the card's linear
    /// framebuffer, and busybox maps one register at a time). So the script sets the card's Bochs VBE registers (its
    /// MMIO BAR, with busybox's devmem) to 1024x768x32, writes two different full frames of noise once through the
    /// legacy 64 KiB window at 0xA0000, a bank at a time, and then flips the displayed screen between them (the VBE
    /// Y offset), each flip changing every pixel of the 1024x768 screen, until Ctrl-C; every 10 flips it says how many
    /// by then, and when (date +%s).
    /// </summary>
    private static string GuestScript() => string.Join("\r", [
        "for d in /sys/bus/pci/devices/*; do [ \"$(cat $d/vendor)$(cat $d/device)\" = 0x12340x1111 ] && V=$d; done",
        "set -- $(sed -n 3p $V/resource); IO=$(($1))",
        "r() { devmem $((IO+0x500+$1*2)) 16 $2; }",
        "r 4 0; r 1 1024; r 2 768; r 3 32; r 6 1024; r 4 0x41",
        "dd if=/dev/urandom of=/tmp/a bs=65536 count=96 2>/dev/null",
        "b=0; while [ $b -lt 96 ]; do r 5 $b; dd if=/tmp/a of=/dev/mem bs=65536 seek=10 skip=$b count=1 conv=notrunc 2>/dev/null || echo qwbench-write-failed; b=$((b+1)); done; r 5 0",
        // A short sleep after each flip: a guest that spins starves qemu's own display thread on this machine's 2 cores.
        "n=0; while true; do r 9 768; usleep 30000; r 9 0; usleep 30000; n=$((n+2)); [ $((n%10)) = 0 ] && echo \"qwbench $n $(date +%s)\"; done",
        ""]);

    private static async Task FramesAsync(IPage page, ConsoleHost host, string name, Domain domain)
    {
        // Taken over from the page's terminal, which the echo left open.
        using var shell = await SerialConsoleClient.ConnectAsync(host, name, force: true);
        _ = shell.StartReading();
        await shell.SendAsync(GuestScript());

        // A bare RFB client on libvirt's descriptor: what the VNC server sends when asked as fast as it answers.
        await WaitForModeAsync(domain, () => shell.Text[^Math.Min(shell.Text.Length, 1500)..]);
        var direct = await DirectFramesAsync(domain, FrameWindow);

        await page.GotoAsync($"{host.BaseUrl}/qubes/{name}/console?view=screen");
        await page.Locator("#screen-status[data-console-state=Open]").WaitForAsync(new() { Timeout = 60_000 });
        await page.WaitForFunctionAsync("() => { const c = document.querySelector('#screen-display canvas'); return c && c.width === 1024 && c.height === 768; }",
            null, new() { Timeout = 30_000 });
        // 1:1, as a viewer of a 1024x768 screen would see it, and no scaling work in the page.
        await page.Locator("#screen-one-to-one").ClickAsync();
        await page.EvaluateAsync("() => { window.__qwFrames.all = 0; window.__qwFrames.full = 0; }");
        var sw = Stopwatch.StartNew();
        await Task.Delay(FrameWindow);
        var counted = await page.EvaluateAsync<FrameCount>("() => ({ all: window.__qwFrames.all, full: window.__qwFrames.full })");
        var elapsed = sw.Elapsed.TotalSeconds;

        await shell.SendAsync("\u0003");
        // The guest's own count over the whole run (its clock has whole seconds only).
        var counts = shell.Text.Split('\n').Select(l => l.Trim().Split(' ')).Where(w => w.Length == 3 && w[0] == "qwbench")
            .Select(w => (N: int.Parse(w[1], CultureInfo.InvariantCulture), T: long.Parse(w[2], CultureInfo.InvariantCulture))).ToList();
        var (written, seconds) = counts.Count < 2 ? (0, 1L) : (counts[^1].N - counts[0].N, Math.Max(1, counts[^1].T - counts[0].T));
        var guestRate = written / (double)seconds;
        var canvasRate = counted.Full / elapsed;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"guest writes full 1024x768 frames        {guestRate,8:0.0} /s   ({written} in {seconds} s)"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"bare RFB client on libvirt's descriptor  {direct,8:0.0} full-screen updates/s"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"noVNC canvas in Chromium (relay)         {canvasRate,8:0.0} full-screen updates/s   ({counted.Full} full of {counted.All} draws in {elapsed:0.0} s)"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"canvas vs bare RFB client {canvasRate / direct:0.00}x, vs frames written {canvasRate / guestRate:0.00}x   goal >= 10 fps: {(canvasRate >= 10 ? "MET" : "MISSED")} ({canvasRate:0.0} fps)"));
    }

    private sealed class Echo
    {
        public double Ms { get; set; }
        public string Row { get; set; } = "";
    }

    private sealed class FrameCount
    {
        public int All { get; set; }
        public int Full { get; set; }
    }

    private static async Task WaitForModeAsync(Domain domain, Func<string> shell)
    {
        await Eventually.UntilAsync(async () =>
        {
            using var s = Open(domain);
            var (w, h) = await HandshakeAsync(s);
            return w == 1024 && h == 768;
        }, "the guest's screen at 1024x768", TimeSpan.FromSeconds(120), shell);
    }

    private static NetworkStream Open(Domain domain) =>
        new(new Socket(new SafeSocketHandle(domain.OpenGraphicsFd(0, DomainOpenGraphicsFlags.SkipAuth), ownsHandle: true)), ownsSocket: true);

    /// <summary>RFB 3.8 with no authentication, shared; the server's screen size.</summary>
    private static async Task<(int Width, int Height)> HandshakeAsync(NetworkStream s)
    {
        var buf = new byte[64];
        await s.ReadExactlyAsync(buf.AsMemory(0, 12));
        await s.WriteAsync("RFB 003.008\n"u8.ToArray());
        await s.ReadExactlyAsync(buf.AsMemory(0, 1));
        await s.ReadExactlyAsync(buf.AsMemory(0, buf[0]));
        await s.WriteAsync(new byte[] { 1 });
        await s.ReadExactlyAsync(buf.AsMemory(0, 4));
        await s.WriteAsync(new byte[] { 1 });
        await s.ReadExactlyAsync(buf.AsMemory(0, 24));
        var nameLength = BinaryPrimitives.ReadInt32BigEndian(buf.AsSpan(20));
        await s.ReadExactlyAsync(new byte[nameLength]);
        return (BinaryPrimitives.ReadUInt16BigEndian(buf), BinaryPrimitives.ReadUInt16BigEndian(buf.AsSpan(2)));
    }

    /// <summary>Full-screen updates per second a raw-encoding client gets, asking again as soon as each one ends.</summary>
    private static async Task<double> DirectFramesAsync(Domain domain, TimeSpan window)
    {
        await using var s = Open(domain);
        var (width, height) = await HandshakeAsync(s);
        // SetEncodings: Raw only; the server's own pixel format (32 bpp here).
        await s.WriteAsync(new byte[] { 2, 0, 0, 1, 0, 0, 0, 0 });
        var request = new byte[10];
        request[0] = 3;
        request[1] = 1; // incremental
        BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(6), (ushort)width);
        BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(8), (ushort)height);
        var header = new byte[12];
        var pixels = new byte[width * height * 4];
        var full = 0;
        var sw = Stopwatch.StartNew();
        // A server with nothing new answers an incremental request only once something changes: bounded by the window.
        using var stop = new CancellationTokenSource(window + TimeSpan.FromSeconds(5));
        while (sw.Elapsed < window && !stop.IsCancellationRequested)
        {
            try
            {
                await s.WriteAsync(request, stop.Token);
                await s.ReadExactlyAsync(header.AsMemory(0, 4), stop.Token);
                if (header[0] != 0) throw new InvalidDataException($"RFB message {header[0]}");
                var rects = BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(2));
                long area = 0;
                for (var r = 0; r < rects; r++)
                {
                    await s.ReadExactlyAsync(header, stop.Token);
                    int w = BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(4)), h = BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(6));
                    var encoding = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(8));
                    if (encoding != 0) throw new InvalidDataException($"RFB encoding {encoding}");
                    await s.ReadExactlyAsync(pixels.AsMemory(0, w * h * 4), stop.Token);
                    area += (long)w * h;
                }
                if (area >= 0.9 * width * height) full++;
            }
            catch (OperationCanceledException)
            {
                break; // the screen stopped changing
            }
        }
        return full / sw.Elapsed.TotalSeconds;
    }
}
