// The console page's screen view (?view=screen): its states, rendered with bUnit over the real monitor, inventory and
// job engine; the hypervisor is the in-memory fake, and the browser side (noVNC and the socket) is bUnit's JS interop.
using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Web;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.JSInterop;
using QubesWeb.Components.Pages.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Consoles;
using QubeConsolePage = QubesWeb.Components.Pages.Qubes.QubeConsole;

namespace QubesWeb.ComponentTests;

public sealed class QubeScreenTests : ConsoleTestContext
{
    private BunitJSModuleInterop _screen = null!, _serial = null!;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        _screen = JSInterop.SetupModule("./console/screen.js");
        _screen.Mode = JSRuntimeMode.Loose;
        _serial = JSInterop.SetupModule("./console/serial.js");
        _serial.Mode = JSRuntimeMode.Loose;
    }

    private IRenderedComponent<QubeConsolePage> RenderPage(string name, string? view = "screen")
    {
        RenderProviders(dialogs: false);
        GoTo(name, view);
        var cut = Render<QubeConsolePage>(p => p.Add(x => x.Name, name));
        cut.WaitForAssertion(() => Assert.Empty(cut.FindAll(".mud-progress-linear")), Wait);
        return cut;
    }

    /// <summary>The page's address, as the browser's would be (the view is a query parameter).</summary>
    private void GoTo(string name, string? view)
    {
        var nav = Services.GetRequiredService<NavigationManager>();
        nav.NavigateTo(nav.GetUriWithQueryParameter("view", view).Replace(new Uri(nav.Uri).AbsolutePath, $"/qubes/{name}/console", StringComparison.Ordinal));
    }

    /// <summary>The screens the page opened: each one's socket path, whether it took over, whether it fits the window.</summary>
    private List<(string Path, bool Force, bool Fit)> Opens() =>
        _screen.Invocations.Where(i => i.Identifier == "open").Select(i => ((string)i.Arguments[1]!, (bool)i.Arguments[2]!, (bool)i.Arguments[3]!)).ToList();

    private static QubeScreenView View(IRenderedComponent<QubeConsolePage> cut) => cut.FindComponent<QubeScreenView>().Instance;

    [Fact]
    public async Task A_running_qubes_screen_is_framed_in_its_label_colour_and_its_controls_reach_the_display()
    {
        var cut = RenderPage("work");

        Assert.Equal("blue", cut.Find("#console-frame").GetAttribute("data-label"));
        Assert.Equal("[work]", cut.Find("#console-title .qube-frame-name").TextContent.Trim());
        Assert.Equal("page", cut.Find("#console-view-screen").GetAttribute("aria-current"));
        Assert.NotNull(cut.Find("#screen-display"));
        Assert.Empty(cut.FindAll("#console-terminal"));
        cut.WaitForAssertion(() => Assert.Equal([("qubes/work/console/vnc", false, true)], Opens()), Wait);
        Assert.DoesNotContain(_serial.Invocations, i => i.Identifier == "open");
        Assert.Contains("Connecting to work's screen", cut.Find("#screen-status").TextContent);
        Assert.True(cut.Find("#screen-ctrl-alt-del").HasAttribute("disabled"));

        await cut.InvokeAsync(() => View(cut).OnConsoleOpened());
        cut.WaitForAssertion(() => Assert.Contains("Connected. Click the screen: keys and mouse then go to work.", cut.Find("#screen-status").TextContent), Wait);
        await cut.Find("#screen-ctrl-alt-del").ClickAsync(new MouseEventArgs());
        cut.WaitForAssertion(() => Assert.Contains(JSInterop.Invocations, i => i.Identifier == "ctrlAltDel"), Wait);
        await cut.Find("#screen-one-to-one").ClickAsync(new MouseEventArgs());
        cut.WaitForAssertion(() => Assert.Contains(JSInterop.Invocations, i => i.Identifier == "setFit" && (bool)i.Arguments[0]! == false), Wait);
        cut.WaitForAssertion(() => Assert.Equal("true", cut.Find("#screen-one-to-one").GetAttribute("aria-pressed")), Wait);
        await cut.Find("#screen-full-screen").ClickAsync(new MouseEventArgs());
        cut.WaitForAssertion(() => Assert.Contains(JSInterop.Invocations, i => i.Identifier == "fullScreen"), Wait);
    }

    [Fact]
    public async Task A_busy_screen_says_someone_else_has_it_open_and_take_over_opens_it_by_force()
    {
        var cut = RenderPage("work");
        cut.WaitForAssertion(() => Assert.Single(Opens()), Wait);

        await cut.InvokeAsync(() => View(cut).OnConsoleClosed(ConsoleClose.Busy, ConsoleClose.BusyReason));
        cut.WaitForAssertion(() => Assert.Contains("Someone else has this console open.", cut.Find("#screen-busy").TextContent), Wait);
        await cut.Find("#screen-take-over").ClickAsync(new MouseEventArgs());

        cut.WaitForAssertion(() => Assert.Equal([("qubes/work/console/vnc", false, true), ("qubes/work/console/vnc", true, true)], Opens()), Wait);
        Assert.Empty(cut.FindAll("#screen-busy"));

        // An ended screen says why, as text.
        await cut.InvokeAsync(() => View(cut).OnConsoleClosed(ConsoleClose.Ended, "<b>work</b> stopped"));
        cut.WaitForAssertion(() => Assert.Equal("<b>work</b> stopped", cut.Find("#screen-closed").TextContent.Trim()), Wait);
        Assert.Empty(cut.FindAll("#screen-closed b"));
    }

    [Fact]
    public async Task A_halted_qube_says_so_and_offers_start_after_which_the_screen_opens()
    {
        var cut = RenderPage("vault");

        Assert.Contains("vault is halted: start it to use its console.", cut.Find("#console-not-running").TextContent);
        Assert.Empty(cut.FindAll("#screen-display"));
        Assert.Empty(Opens());

        // Found and clicked in one dispatch: a render between the two (the live page follows the estate) would drop the handler.
        await cut.InvokeAsync(() => cut.Find("#console-start").ClickAsync(new MouseEventArgs()));

        await Estate.WaitForStateAsync("vault", s => s == RunState.Running, Wait, CancellationToken.None);
        cut.WaitForAssertion(() => Assert.Equal([("qubes/vault/console/vnc", false, true)], Opens()), Wait);
    }

    [Fact]
    public void The_serial_console_and_the_screen_are_two_views_of_one_frame_each_closing_the_other()
    {
        var cut = RenderPage("work", view: null);
        cut.WaitForAssertion(() => Assert.Single(_serial.Invocations, i => i.Identifier == "open"), Wait);
        Assert.Equal("/qubes/work/console?view=screen", cut.Find("#console-view-screen").GetAttribute("href"));

        GoTo("work", "screen");
        cut.WaitForAssertion(() => Assert.Single(Opens()), Wait);
        cut.WaitForAssertion(() => Assert.Empty(cut.FindAll("#console-terminal")), Wait);
        Assert.Single(_serial.Invocations, i => i.Identifier == "dispose");

        GoTo("work", null);
        cut.WaitForAssertion(() => Assert.Equal(2, _serial.Invocations.Count(i => i.Identifier == "open")), Wait);
        cut.WaitForAssertion(() => Assert.Single(_screen.Invocations, i => i.Identifier == "dispose"), Wait);
        Assert.Empty(cut.FindAll("#screen-display"));
    }
}

/// <summary>The screen on the demo: libvirt's test driver runs no guest, so there is no graphical console at all.</summary>
public sealed class QubeScreenDemoTests : ConsoleTestContext
{
    public QubeScreenDemoTests() => Services.Configure<HypervisorOptions>(o => o.Uri = "test:///default");

    [Fact]
    public void In_the_demo_the_screen_view_says_plainly_there_is_no_graphical_console()
    {
        var module = JSInterop.SetupModule("./console/screen.js");
        RenderProviders(dialogs: false);
        var nav = Services.GetRequiredService<NavigationManager>();
        nav.NavigateTo("/qubes/work/console?view=screen");
        var cut = Render<QubeConsolePage>(p => p.Add(x => x.Name, "work"));

        cut.WaitForAssertion(() => Assert.Equal("The demo runs no guest (libvirt's test driver), so work has no screen: there is no graphical console to open.",
            cut.Find("#console-demo").TextContent.Trim()), Wait);
        Assert.Equal("blue", cut.Find("#console-frame").GetAttribute("data-label"));
        Assert.Empty(cut.FindAll("#screen-display"));
        Assert.Empty(module.Invocations);
    }
}
