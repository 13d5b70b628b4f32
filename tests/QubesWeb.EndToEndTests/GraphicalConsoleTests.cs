// A qube's graphical console in the browser, end to end on the real-hypervisor lane: Chromium, the console page and
// its noVNC, the console's WebSocket, libvirt's graphics descriptor, and the lane's small real guest, which writes its
// banner on its VGA screen.
using System.Text.RegularExpressions;
using QubesWeb.Hypervisor.Libvirt;
using QubesWeb.IntegrationTests.RealHypervisor;

namespace QubesWeb.EndToEndTests;

public sealed class GraphicalConsoleTests(BrowserFixture browser, RealLibvirtd daemon, TestGuest guest)
    : IClassFixture<BrowserFixture>, IClassFixture<RealLibvirtd>, IClassFixture<TestGuest>
{
    /// <summary>The guest writes its banner 8 times (TestGuest.ScreenText): about 7600 lit pixels; the firmware's lines about 1500.</summary>
    private const int BannerPixels = 8 * 42 * 16;

    /// <summary>The screen's canvas: its size and how many of its pixels are lit (not black), read from the canvas itself.</summary>
    private const string LitPixels = """
        () => {
          const c = document.querySelector('#screen-display canvas');
          if (!c || c.width === 0) return null;
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let lit = 0;
          for (let i = 0; i < d.length; i += 4) if (d[i] | d[i + 1] | d[i + 2]) lit++;
          return { width: c.width, height: c.height, lit };
        }
        """;

    private static bool IsKey(byte type) => type is 4 or 255;

    private sealed class Canvas
    {
        public int Width { get; set; }
        public int Height { get; set; }
        public int Lit { get; set; }
    }

    [Fact]
    public async Task The_screen_shows_the_real_guests_text_framed_in_its_label_colour_one_viewer_at_a_time()
    {
        _ = daemon; // started by the fixture
        var name = "qwt-novnc-" + Guid.NewGuid().ToString("N")[..10];
        await using var host = await ConsoleHost.StartAsync(RealLibvirtd.Uri, demo: false);
        using var connect = Connect.Open(RealLibvirtd.Uri);
        var page = await browser.NewPageAsync(host);
        // The CSP stays strict (script-src 'self', connect-src 'self', no eval): noVNC and its socket must work under it.
        var errors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") lock (errors) errors.Add(m.Text); };
        page.PageError += (_, e) => { lock (errors) errors.Add(e); };
        // What noVNC sends on the socket: RFB client messages, the first byte their type (5 the pointer; a key is 4, or
        // 255 with qemu, whose extended key events carry the key's scan code too).
        var sent = new List<byte>();
        page.WebSocket += (_, ws) =>
        {
            if (ws.Url.Contains("/console/vnc", StringComparison.Ordinal))
                ws.FrameSent += (_, f) => { if (f.Binary is { Length: > 0 } b) lock (sent) sent.Add(b[0]); };
        };
        try
        {
            using var domain = RealGuestQube.Define(connect, guest, name);
            await RealGuestQube.AddToInventoryAsync(host, name, domain);

            // Halted: the page says so and offers Start, framed already in the qube's colour (orange) with its name.
            await ConsolePage.OpenAsync(page, $"/qubes/{name}/console?view=screen");
            await Expect(page.Locator("#console-not-running")).ToContainTextAsync($"{name} is halted");
            await Expect(page.Locator("#console-start")).ToBeVisibleAsync();
            await Expect(page).ToHaveTitleAsync($"[{name}] screen · QubesWeb");
            await Expect(page.Locator("#console-frame")).ToHaveCSSAsync("border-top-color", "rgb(245, 121, 0)");
            await Expect(page.Locator("#console-title")).ToContainTextAsync($"[{name}]");
            await Expect(page.Locator("#console-view-screen")).ToHaveAttributeAsync("aria-current", "page");

            // Started behind the page's back (the guest's kernel is not the console's domain): the page follows libvirt's
            // event and opens the screen, which shows the guest's banner.
            domain.Create();
            await Expect(page.Locator("#screen-status")).ToHaveAttributeAsync("data-console-state", "Open", new() { Timeout = 60_000 });
            await page.WaitForFunctionAsync($"() => ({LitPixels})()?.lit >= {BannerPixels}", null,
                new() { Timeout = 120_000, PollingInterval = 250 });
            var canvas = await page.EvaluateAsync<Canvas>(LitPixels);
            Assert.True(canvas.Width >= 640 && canvas.Height >= 400, $"a {canvas.Width}x{canvas.Height} screen");
            await Screenshots.SaveAsync(page, "console-screen");

            // Keyboard and mouse go to the qube once the screen has focus; Ctrl-Alt-Del is a button.
            var display = page.Locator("#screen-display canvas");
            await display.ClickAsync();
            await page.Keyboard.PressAsync("a");
            await Eventually.UntilAsync(() => { lock (sent) return sent.Any(IsKey) && sent.Contains(5); }, "a key and a pointer event sent to the qube", detail: () => { lock (sent) return string.Join(",", sent); });
            lock (sent) sent.Clear();
            await page.Locator("#screen-ctrl-alt-del").ClickAsync();
            await Eventually.UntilAsync(() => { lock (sent) return sent.Count(IsKey) >= 6; }, "Ctrl, Alt and Del pressed and released");

            // Fit to window scales the screen to its box; 1:1 shows it pixel for pixel.
            var fitted = await display.BoundingBoxAsync();
            await page.Locator("#screen-one-to-one").ClickAsync();
            await Expect(display).ToHaveJSPropertyAsync("clientWidth", canvas.Width);
            await page.Locator("#screen-fit").ClickAsync();
            await Expect(display).Not.ToHaveJSPropertyAsync("clientWidth", canvas.Width);
            Assert.True(fitted is not null && Math.Abs(fitted.Width - canvas.Width) > 1, $"fitted {fitted?.Width} for a screen {canvas.Width} wide");

            // Full screen takes the whole frame, its colour and name with it.
            await page.Locator("#screen-full-screen").ClickAsync();
            await page.WaitForFunctionAsync("() => document.fullscreenElement?.id === 'console-frame'");
            await page.EvaluateAsync("() => document.exitFullscreen()");

            // A second tab is one viewer too many: it says so, and taking over tells the first tab why it lost it.
            var second = await page.Context.NewPageAsync();
            await ConsolePage.OpenAsync(second, $"/qubes/{name}/console?view=screen");
            await Expect(second.Locator("#screen-busy")).ToContainTextAsync("Someone else has this console open.");
            await second.Locator("#screen-take-over").ClickAsync();
            await Expect(second.Locator("#screen-status")).ToHaveAttributeAsync("data-console-state", "Open");
            await Expect(page.Locator("#screen-closed")).ToHaveTextAsync("Someone took this console over.");
            await second.WaitForFunctionAsync($"() => ({LitPixels})()?.lit >= {BannerPixels}", null, new() { PollingInterval = 250 });
            await Screenshots.SaveAsync(page, "console-screen-taken-over");

            // The serial console is the other view of the same frame.
            await second.Locator("#console-view-serial").ClickAsync();
            await Expect(second).ToHaveURLAsync(new Regex($"/qubes/{name}/console$"));
            await Expect(second.Locator("#console-status")).ToHaveAttributeAsync("data-console-state", "Open");
            await Expect(second.Locator("#screen-display")).ToHaveCountAsync(0);

            lock (errors) Assert.True(errors.Count == 0, "Errors in the page's console: " + string.Join("\n", errors));
        }
        finally
        {
            await page.Context.CloseAsync();
            await host.StopAsync();
            RealLibvirtd.Remove(name);
        }
    }
}
