// The console page's states, rendered with bUnit over the real monitor, inventory and job engine; the hypervisor is
// the in-memory fake, and the browser side (xterm.js and the socket) is bUnit's JS interop: what the page asks of it.
using Microsoft.AspNetCore.Components.Web;
using Microsoft.JSInterop;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Consoles;
using QubeConsolePage = QubesWeb.Components.Pages.Qubes.QubeConsole;

namespace QubesWeb.ComponentTests;

public sealed class QubeConsoleTests : ConsoleTestContext
{
    private BunitJSModuleInterop _module = null!;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        _module = JSInterop.SetupModule("./console/serial.js");
        _module.Mode = JSRuntimeMode.Loose;
    }

    private IRenderedComponent<QubeConsolePage> RenderPage(string name)
    {
        RenderProviders(dialogs: false);
        var cut = Render<QubeConsolePage>(p => p.Add(x => x.Name, name));
        cut.WaitForAssertion(() => Assert.Empty(cut.FindAll(".mud-progress-linear")), Wait);
        return cut;
    }

    /// <summary>The terminal's opens the page asked for: each one's socket path and whether it took the console over.</summary>
    private List<(string Path, bool Force)> Opens() =>
        _module.Invocations.Where(i => i.Identifier == "open").Select(i => ((string)i.Arguments[1]!, (bool)i.Arguments[2]!)).ToList();

    [Fact]
    public void A_running_qubes_console_is_framed_in_its_label_colour_with_its_name_and_opens_its_socket()
    {
        var cut = RenderPage("work");

        var frame = cut.Find("#console-frame");
        Assert.Equal("blue", frame.GetAttribute("data-label"));
        Assert.Contains("--qube-colour:#3465a4", frame.GetAttribute("style"));
        Assert.Contains("--qube-ink:#ffffff", frame.GetAttribute("style"));
        Assert.Equal("[work]", cut.Find("#console-title .qube-frame-name").TextContent.Trim());
        Assert.NotNull(cut.Find("#console-terminal"));
        cut.WaitForAssertion(() => Assert.Equal([("qubes/work/console/serial", false)], Opens()), Wait);
        Assert.Contains("Connecting to work's serial console", cut.Find("#console-status").TextContent);
        Assert.Equal("Paste into work", cut.Find("#console-paste-button").TextContent.Trim());
        Assert.True(cut.Find("#console-paste-button").HasAttribute("disabled"));

        cut.InvokeAsync(() => cut.Instance.OnConsoleOpened());
        cut.WaitForAssertion(() => Assert.Contains("Connected. What you type goes to work", cut.Find("#console-status").TextContent), Wait);
    }

    [Fact]
    public async Task Paste_types_the_text_into_the_qube_through_the_terminal()
    {
        var cut = RenderPage("work");
        cut.WaitForAssertion(() => Assert.Single(Opens()), Wait);
        await cut.InvokeAsync(() => cut.Instance.OnConsoleOpened());

        await cut.Find("#console-paste-text").InputAsync(new Microsoft.AspNetCore.Components.ChangeEventArgs { Value = "ls -l\n<b>not markup</b>" });
        cut.WaitForAssertion(() => Assert.False(cut.Find("#console-paste-button").HasAttribute("disabled")), Wait);
        await cut.Find("#console-paste-button").ClickAsync(new MouseEventArgs());

        // The text goes to the console object open() returned, as it is: the script turns line ends into Enter.
        cut.WaitForAssertion(() => Assert.Contains(JSInterop.Invocations, i => i.Identifier == "paste" && (string)i.Arguments[0]! == "ls -l\n<b>not markup</b>"), Wait);
    }

    [Fact]
    public async Task A_busy_console_says_someone_else_has_it_open_and_take_over_opens_it_by_force()
    {
        var cut = RenderPage("work");
        cut.WaitForAssertion(() => Assert.Single(Opens()), Wait);

        await cut.InvokeAsync(() => cut.Instance.OnConsoleClosed(ConsoleClose.Busy, ConsoleClose.BusyReason));
        cut.WaitForAssertion(() => Assert.Contains("Someone else has this console open.", cut.Find("#console-busy").TextContent), Wait);
        await cut.Find("#console-take-over").ClickAsync(new MouseEventArgs());

        cut.WaitForAssertion(() => Assert.Equal([("qubes/work/console/serial", false), ("qubes/work/console/serial", true)], Opens()), Wait);
        Assert.Empty(cut.FindAll("#console-busy"));
    }

    [Fact]
    public async Task A_console_that_ended_shows_the_reason_as_text_and_connects_again()
    {
        var cut = RenderPage("work");
        cut.WaitForAssertion(() => Assert.Single(Opens()), Wait);

        await cut.InvokeAsync(() => cut.Instance.OnConsoleClosed(ConsoleClose.TakenOver, "<img src=x onerror=alert(1)> took it"));
        cut.WaitForAssertion(() => Assert.Equal("<img src=x onerror=alert(1)> took it", cut.Find("#console-closed").TextContent.Trim()), Wait);
        Assert.Empty(cut.FindAll("#console-closed img"));
        await cut.Find("#console-reconnect").ClickAsync(new MouseEventArgs());
        cut.WaitForAssertion(() => Assert.Equal(2, Opens().Count), Wait);
        Assert.False(Opens()[1].Force);
    }

    [Fact]
    public void Going_to_another_qubes_console_closes_the_first_ones_terminal_and_opens_the_others()
    {
        // Both run in the seeded estate.
        var cut = RenderPage("work");
        cut.WaitForAssertion(() => Assert.Single(Opens()), Wait);

        cut.Render(p => p.Add(x => x.Name, "sys-net"));

        cut.WaitForAssertion(() => Assert.Equal("red", cut.Find("#console-frame").GetAttribute("data-label")), Wait);
        cut.WaitForAssertion(() => Assert.Equal([("qubes/work/console/serial", false), ("qubes/sys-net/console/serial", false)], Opens()), Wait);
        // The first terminal was disposed (bUnit lists invocations by name, not in order; the page disposes before it opens).
        Assert.Single(JSInterop.Invocations, i => i.Identifier == "dispose");
    }

    [Fact]
    public async Task A_halted_qube_says_so_and_offers_start_after_which_the_terminal_opens()
    {
        var cut = RenderPage("vault");

        Assert.Equal("black", cut.Find("#console-frame").GetAttribute("data-label"));
        Assert.Contains("vault is halted: start it to use its console.", cut.Find("#console-not-running").TextContent);
        Assert.Empty(cut.FindAll("#console-terminal"));
        Assert.Empty(Opens());

        // Found and clicked in one dispatch: a render between the two (the live page follows the estate) would drop the handler.
        await cut.InvokeAsync(() => cut.Find("#console-start").ClickAsync(new MouseEventArgs()));

        await Estate.WaitForStateAsync("vault", s => s == RunState.Running, Wait, CancellationToken.None);
        cut.WaitForAssertion(() => Assert.NotNull(cut.Find("#console-terminal")), Wait);
        cut.WaitForAssertion(() => Assert.Equal([("qubes/vault/console/serial", false)], Opens()), Wait);
    }

    [Fact]
    public void Dom0_has_no_console_and_no_qube_colour()
    {
        var cut = RenderPage("dom0");
        Assert.Contains("dom0 is where this console runs", cut.Find("#console-dom0").TextContent);
        Assert.Empty(cut.FindAll("#console-frame"));
        Assert.DoesNotContain("--qube-colour", cut.Markup);
        Assert.Empty(Opens());
    }

    [Fact]
    public void An_unknown_qube_is_said_to_be_missing()
    {
        var cut = RenderPage("nosuchqube");
        Assert.Contains("There is no qube named 'nosuchqube'", cut.Find("#console-no-qube").TextContent);
        Assert.Empty(cut.FindAll("#console-frame"));
    }

    [Theory]
    [InlineData("#000000", "#ffffff")]
    [InlineData("#3465a4", "#ffffff")]
    [InlineData("#cc0000", "#ffffff")]
    [InlineData("#edd400", "#000000")]
    [InlineData("#73d216", "#000000")]
    [InlineData("not a colour", "#ffffff")]
    public void The_frames_title_is_written_in_the_colour_that_reads_best_on_the_label(string label, string ink) =>
        Assert.Equal(ink, QubeConsolePage.InkOn(label));
}

/// <summary>The page on the demo: libvirt's test driver runs no guest, so there is no terminal at all.</summary>
public sealed class QubeConsoleDemoTests : ConsoleTestContext
{
    public QubeConsoleDemoTests() => Services.Configure<HypervisorOptions>(o => o.Uri = "test:///default");

    [Fact]
    public void In_the_demo_the_page_says_plainly_there_is_no_console_and_shows_no_terminal()
    {
        var module = JSInterop.SetupModule("./console/serial.js");
        RenderProviders(dialogs: false);
        var cut = Render<QubeConsolePage>(p => p.Add(x => x.Name, "work"));

        cut.WaitForAssertion(() => Assert.Equal("The demo runs no guest (libvirt's test driver), so work has no console to open.",
            cut.Find("#console-demo").TextContent.Trim()), Wait);
        Assert.Equal("blue", cut.Find("#console-frame").GetAttribute("data-label"));
        Assert.Empty(cut.FindAll("#console-terminal"));
        Assert.Empty(module.Invocations);
    }
}
