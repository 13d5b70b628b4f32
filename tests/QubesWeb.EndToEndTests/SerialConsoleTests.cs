// A qube's serial console in the browser, end to end on the real-hypervisor lane: Chromium, the console page and its
// xterm.js, the console's WebSocket, libvirt's stream, and the lane's small real guest with a shell on ttyS0.
using System.Text.RegularExpressions;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Libvirt;
using QubesWeb.IntegrationTests.RealHypervisor;
using QubesWeb.Services.Estate;

// The real lane's guest is made with Linux file modes (TestGuest), as in the integration tests' assembly.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace QubesWeb.EndToEndTests;

public sealed class SerialConsoleTests(BrowserFixture browser, RealLibvirtd daemon, TestGuest guest)
    : IClassFixture<BrowserFixture>, IClassFixture<RealLibvirtd>, IClassFixture<TestGuest>
{
    /// <summary>A line of the terminal that holds only the shell's answer (the typed line says 6*7, never 42 alone).</summary>
    private static ILocator Line(IPage page, string text) =>
        page.Locator("#console-terminal .xterm-rows > div").Filter(new LocatorFilterOptions { HasTextRegex = new Regex($@"^[^\w]*{Regex.Escape(text)}[^\w]*$") });

    [Fact]
    public async Task A_command_typed_in_the_browser_runs_in_the_real_guest_framed_in_its_label_colour()
    {
        _ = daemon; // started by the fixture
        var name = "qwt-xterm-" + Guid.NewGuid().ToString("N")[..10];
        await using var host = await ConsoleHost.StartAsync(RealLibvirtd.Uri, demo: false);
        using var connect = Connect.Open(RealLibvirtd.Uri);
        var page = await browser.NewPageAsync(host);
        // The CSP stays strict (script-src 'self', connect-src 'self'): xterm.js and the socket must work under it.
        var errors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") lock (errors) errors.Add(m.Text); };
        try
        {
            using var domain = RealGuestQube.Define(connect, guest, name);
            await RealGuestQube.AddToInventoryAsync(host, name, domain);

            // Halted: the page says so, framed already in the qube's colour (orange) with its name.
            await ConsolePage.OpenAsync(page, $"/qubes/{name}/console");
            await Expect(page.Locator("#console-not-running")).ToContainTextAsync($"{name} is halted");
            await Expect(page).ToHaveTitleAsync($"[{name}] serial console · QubesWeb");
            var frame = page.Locator("#console-frame");
            await Expect(frame).ToHaveAttributeAsync("data-label", "orange");
            await Expect(frame).ToHaveCSSAsync("border-top-color", "rgb(245, 121, 0)");
            await Expect(page.Locator("#console-title")).ToHaveCSSAsync("background-color", "rgb(245, 121, 0)");
            await Expect(page.Locator("#console-title")).ToContainTextAsync($"[{name}]");

            // Started (here behind the page's back, as the guest's kernel is not the console's domain): the page
            // follows libvirt's event and opens the terminal on its own, in time to see the guest's shell come up.
            domain.Create();
            await Expect(page.Locator("#console-status")).ToHaveAttributeAsync("data-console-state", "Open", new() { Timeout = 60_000 });
            await Expect(page.Locator("#console-terminal .xterm-rows")).ToContainTextAsync("test guest: shell on ttyS0", new() { Timeout = 120_000 });

            await page.Locator("#console-terminal").ClickAsync();
            await page.Keyboard.TypeAsync("echo $((6*7))");
            await page.Keyboard.PressAsync("Enter");
            await Expect(Line(page, "42")).Not.ToHaveCountAsync(0, new() { Timeout = 60_000 });
            // The terminal fills its box in the frame.
            var box = await page.Locator("#console-terminal").BoundingBoxAsync();
            var screen = await page.Locator("#console-terminal .xterm-screen").BoundingBoxAsync();
            Assert.True(box is not null && screen is not null && screen.Width > box.Width * 0.8 && screen.Width <= box.Width,
                $"terminal {screen?.Width}x{screen?.Height} in a box of {box?.Width}x{box?.Height}");

            // Copy works as in xterm: the mouse selects the terminal's text (drawn in its selection layer).
            var answer = await Line(page, "42").First.BoundingBoxAsync();
            Assert.NotNull(answer);
            await page.Mouse.MoveAsync(answer.X + 1, answer.Y + answer.Height / 2);
            await page.Mouse.DownAsync();
            await page.Mouse.MoveAsync(answer.X + 60, answer.Y + answer.Height / 2, new() { Steps = 5 });
            await page.Mouse.UpAsync();
            await Expect(page.Locator("#console-terminal .xterm-selection div")).Not.ToHaveCountAsync(0);

            // Paste into NAME types the field's text as keystrokes.
            await page.Locator("textarea#console-paste-text").FillAsync("echo pasted-$((40+2))\n");
            await page.Locator("#console-paste-button").ClickAsync();
            await Expect(Line(page, "pasted-42")).Not.ToHaveCountAsync(0, new() { Timeout = 60_000 });
            await Screenshots.SaveAsync(page, "console-serial");

            // A second tab is one viewer too many: it says so, and taking over tells the first tab why it lost it.
            var second = await page.Context.NewPageAsync();
            await ConsolePage.OpenAsync(second, $"/qubes/{name}/console");
            await Expect(second.Locator("#console-busy")).ToContainTextAsync("Someone else has this console open.");
            await Screenshots.SaveAsync(second, "console-serial-busy");
            await second.Locator("#console-take-over").ClickAsync();
            await Expect(second.Locator("#console-status")).ToHaveAttributeAsync("data-console-state", "Open");
            await Expect(page.Locator("#console-closed")).ToHaveTextAsync("Someone took this console over.");
            await second.Locator("#console-terminal").ClickAsync();
            await second.Keyboard.TypeAsync("echo taken-$((40+2))");
            await second.Keyboard.PressAsync("Enter");
            await Expect(Line(second, "taken-42")).Not.ToHaveCountAsync(0, new() { Timeout = 60_000 });
            await Screenshots.SaveAsync(page, "console-serial-taken-over");

            lock (errors) Assert.True(errors.Count == 0, "Errors in the page's console: " + string.Join("\n", errors));

            // The guest stops: the page says it is halted and offers Start again.
            domain.Destroy();
            await host.Get<EstateMonitor>().WaitForStateAsync(name, s => s == RunState.Halted, TimeSpan.FromSeconds(60), CancellationToken.None);
            await Expect(page.Locator("#console-not-running")).ToContainTextAsync($"{name} is halted");
            await Expect(page.Locator("#console-terminal")).ToHaveCountAsync(0);
        }
        finally
        {
            await page.Context.CloseAsync();
            await host.StopAsync();
            RealLibvirtd.Remove(name);
        }
    }
}

/// <summary>The console page on the demo, whose test driver runs no guest: a plain sentence, no terminal, no socket.</summary>
public sealed class SerialConsoleDemoTests(BrowserFixture browser) : IClassFixture<BrowserFixture>
{
    [Fact]
    public async Task In_the_demo_the_console_page_says_there_is_no_console_and_dom0s_carries_no_qube_colour()
    {
        await using var tab = await browser.OpenConsoleAsync();
        var (_, page) = tab;
        var sockets = 0;
        page.WebSocket += (_, ws) => { if (ws.Url.Contains("/console/serial", StringComparison.Ordinal)) sockets++; };

        // From the running qube's page, by its Console button.
        await ConsolePage.OpenAsync(page, "/qubes/work");
        await page.Locator("#qube-console").ClickAsync();
        await Expect(page).ToHaveURLAsync(new Regex("/qubes/work/console$"));
        await Expect(page.Locator("#console-demo")).ToHaveTextAsync("The demo runs no guest (libvirt's test driver), so work has no console to open.");
        await Expect(page.Locator("#console-frame")).ToHaveAttributeAsync("data-label", "blue");
        await Expect(page.Locator("#console-frame")).ToHaveCSSAsync("border-top-color", "rgb(52, 101, 164)");
        await Expect(page).ToHaveTitleAsync("[work] serial console · QubesWeb");
        Assert.Equal(0, await page.Locator("#console-terminal").CountAsync());
        await Screenshots.SaveAsync(page, "console-demo");

        await ConsolePage.OpenAsync(page, "/qubes/dom0/console");
        await Expect(page.Locator("#console-dom0")).ToBeVisibleAsync();
        Assert.Equal(0, await page.Locator("#console-frame").CountAsync());
        Assert.Equal(0, sockets);
    }
}
