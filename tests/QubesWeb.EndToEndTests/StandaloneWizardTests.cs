// The standalone wizard in headless Chromium at a laptop's 1280x800, against the real console on its embedded demo
// (templates fedora-42 and debian-13 with real qcow2 roots): every step to a created standalone, which then starts from
// its own page and becomes independent of its template; and a standalone of a template with data to copy, running at
// once while its page shows the copy's progress, until it is independent.
// Every step is saved as a screenshot (artifacts/screenshots/standalone-*.png).
using QubesWeb.Data.Jobs;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Jobs;
using QubesWeb.Services.Storage;

namespace QubesWeb.EndToEndTests;

public sealed class StandaloneWizardTests(BrowserFixture browser) : IClassFixture<BrowserFixture>
{
    private const long GiB = 1L << 30;

    private static readonly ViewportSize Laptop = new() { Width = 1280, Height = 800 };

    private static Task ExpectStepAsync(IPage page, string step) =>
        Expect(page.Locator("#standalone-wizard")).ToHaveAttributeAsync("data-step", step);

    /// <summary>
    /// Waits until a filled button is enabled (or disabled) and its colour transition has run, so a screenshot shows
    /// it as it is: the palette's primary (#3465a4) or the disabled grey.
    /// </summary>
    private static async Task SettledAsync(ILocator button, bool enabled)
    {
        if (enabled) await Expect(button).ToBeEnabledAsync();
        else await Expect(button).ToBeDisabledAsync();
        // The pointer is parked away from the buttons: after a click on Next it would rest on the next step's button.
        await button.Page.Mouse.MoveAsync(1270, 790);
        await Expect(button).ToHaveCSSAsync("background-color", enabled ? "rgb(52, 101, 164)" : "rgba(0, 0, 0, 0.118)");
    }

    /// <summary>Types a number and leaves the field, as a user does, so the field commits its value.</summary>
    private static async Task FillNumberAsync(IPage page, string id, string value)
    {
        await page.Locator($"input#{id}").FillAsync(value);
        await page.Locator($"input#{id}").PressAsync("Tab");
    }

    [Fact]
    public async Task TheWholeWizardMakesADevelopmentStandaloneFromFedoraThatThenStartsFromItsPage()
    {
        await using var tab = await browser.OpenConsoleAsync(viewport: Laptop);
        var (host, page) = tab;
        await ConsolePage.OpenAsync(page, "/qubes");
        await page.Locator("#new-standalone").ClickAsync();
        await Expect(page).ToHaveURLAsync(host.BaseUrl + "/create/standalone");
        var next = page.Locator("#wizard-next");

        // 1. Purpose
        await ExpectStepAsync(page, "purpose");
        await SettledAsync(next, enabled: false);
        await Expect(page.Locator("#wizard-blocked")).ToHaveTextAsync("Choose what it is for.");
        await Screenshots.SaveAsync(page, "standalone-1-purpose");
        await page.Locator("#purpose-development").ClickAsync();
        await Expect(page.Locator("#purpose-development")).ToHaveAttributeAsync("aria-checked", "true");
        await SettledAsync(next, enabled: true);
        await Screenshots.SaveAsync(page, "standalone-1-purpose-chosen");
        await next.ClickAsync();

        // 2. Source: both demo templates, each with its revision, size and trust.
        await ExpectStepAsync(page, "source");
        await Expect(next).ToBeDisabledAsync();
        var fedora = page.Locator("#source-fedora-42");
        await Expect(fedora.Locator(".qw-source-revision")).ToHaveTextAsync("revision 1");
        await Expect(fedora.Locator(".qw-source-size")).ToContainTextAsync("used of 10 GiB");
        await Expect(fedora.Locator(".qw-source-trust")).ToContainTextAsync("purple");
        await Expect(page.Locator("#source-debian-13 .qw-source-revision")).ToHaveTextAsync("revision 1");
        await Expect(page.Locator("#source-empty")).ToBeVisibleAsync();
        await fedora.ClickAsync();
        await Expect(fedora).ToHaveAttributeAsync("aria-checked", "true");
        await SettledAsync(next, enabled: true);
        await Screenshots.SaveAsync(page, "standalone-2-source");
        await next.ClickAsync();

        // 3. Identity: the rules said as the user types; a qube's and an unmanaged libvirt domain's names refused.
        await ExpectStepAsync(page, "identity");
        var name = page.Locator("input#wizard-name");
        var problems = page.Locator(".qw-name-problem");
        await name.FillAsync("1st dev box");
        await Expect(problems).ToHaveTextAsync(
        [
            "A name must start with a letter (a-z or A-Z).",
            "A name may contain only letters, digits, '_', '.' and '-'; not spaces.",
        ]);
        await SettledAsync(next, enabled: false);
        await Screenshots.SaveAsync(page, "standalone-3-identity-bad-name");
        await name.FillAsync("work");
        await Expect(problems).ToHaveTextAsync(["A qube named 'work' already exists."]);
        await name.FillAsync("legacy-vm");
        await Expect(problems).ToHaveTextAsync(["libvirt already has a domain named 'legacy-vm' that is not a qube of this console."]);
        await Expect(next).ToBeDisabledAsync();
        await name.FillAsync("dev-e2e");
        await Expect(problems).ToHaveCountAsync(0);
        await Expect(page.Locator("#wizard-label")).ToHaveTextAsync("orange");
        await Expect(page.Locator("#label-orange")).ToHaveAttributeAsync("aria-checked", "true");
        await SettledAsync(next, enabled: true);
        await Screenshots.SaveAsync(page, "standalone-3-identity");
        await next.ClickAsync();

        // 4. Resources: the development preset; a root below the source's size refused in words.
        await ExpectStepAsync(page, "resources");
        await Expect(page.Locator("input#wizard-memory")).ToHaveValueAsync("4000");
        await Expect(page.Locator("input#wizard-vcpus")).ToHaveValueAsync("2");
        await Expect(page.Locator("input#wizard-root")).ToHaveValueAsync("20");
        await Expect(page.Locator("input#wizard-private")).ToHaveValueAsync("2");
        await FillNumberAsync(page, "wizard-root", "5");
        await Expect(page.Locator("#root-problem")).ToHaveTextAsync(
            "The root cannot be smaller than 10 GiB, the size of fedora-42's root: choose 10 GiB or more.");
        await SettledAsync(next, enabled: false);
        await Screenshots.SaveAsync(page, "standalone-4-resources-root-too-small");
        await FillNumberAsync(page, "wizard-root", "24");
        await Expect(page.Locator("#root-problem")).ToHaveCountAsync(0);
        await SettledAsync(next, enabled: true);
        await Screenshots.SaveAsync(page, "standalone-4-resources");
        await next.ClickAsync();

        // 5. Review: the choices, the space the copy takes against the free space, the trust note.
        await ExpectStepAsync(page, "review");
        await Expect(page.Locator("#review-name")).ToHaveTextAsync("dev-e2e");
        await Expect(page.Locator("#review-netvm")).ToHaveTextAsync("sys-firewall");
        await Expect(page.Locator("#review-root")).ToHaveTextAsync("24 GiB (grown from 10 GiB)");
        await Expect(page.Locator("#review-space")).ToHaveAttributeAsync("data-fits", "true");
        await Expect(page.Locator("#review-space-text")).ToContainTextAsync("It is usable at once and becomes independent of fedora-42 in the background; then it will take");
        await Expect(page.Locator("#review-trust")).ToContainTextAsync("as trusted as the template it came from, until you install software into it");
        await Expect(page.Locator("#review-no-space")).ToHaveCountAsync(0);
        await SettledAsync(page.Locator("#wizard-create"), enabled: true);
        await Screenshots.SaveAsync(page, "standalone-5-review");

        // 6. Create: the job runs, and on success the new qube's page opens.
        await page.Locator("#wizard-create").ClickAsync();
        await Expect(page).ToHaveURLAsync(host.BaseUrl + "/qubes/dev-e2e");
        await Expect(page.Locator("#qube-title")).ToHaveTextAsync("dev-e2e");
        await Expect(page.Locator("#qube-class")).ToHaveTextAsync("StandaloneVM");
        await Expect(page.Locator("#qube-header [data-state]")).ToHaveAttributeAsync("data-state", "halted");
        await Screenshots.SaveAsync(page, "standalone-6-created");

        var qube = await host.Get<Inventory>().GetAsync("dev-e2e");
        Assert.Equal(("orange", 4000, 2, "sys-firewall"), (qube.Label.Name, qube.MemoryMiB, qube.VCpus, qube.NetVm?.Name));
        Assert.Equal(24 * GiB, qube.Volumes.Single(v => v.Kind == VolumeKind.Root).VirtualSizeBytes);

        await ConsolePage.Button(page, "Start dev-e2e").ClickAsync();
        await Expect(page.Locator("#qube-header [data-state]")).ToHaveAttributeAsync("data-state", "running");
        Assert.Equal(RunState.Running, host.Get<IHypervisor>().GetDomain("dev-e2e")?.State);
        await Screenshots.SaveAsync(page, "standalone-7-running");
        await Expect(page.Locator("#qube-independence")).ToHaveAttributeAsync("data-state", "independent");
    }

    /// <summary>A template whose root holds <paramref name="dataBytes"/> of real data, so its copy takes a moment.</summary>
    private static async Task AddTemplateWithDataAsync(ConsoleHost host, string name, long dataBytes)
    {
        var dir = Directory.CreateDirectory(Path.Combine(host.DataDir, "pool", name)).FullName;
        var path = Path.Combine(dir, RootFiles.Revision(1));
        await QemuImg.CreateAsync(path, 10 * GiB);
        await QemuImg.WritePatternAsync(path, 0x3c, 0, dataBytes);
        var info = await QemuImg.InfoAsync(path);
        await host.Get<Inventory>().CreateAsync(new NewQube(name, QubeClass.TemplateVM, "black", Volumes:
        [
            new NewVolume(VolumeKind.Root, Path.Combine(dir, RootFiles.Dirty), info.VirtualSizeBytes, info.ActualSizeBytes,
                new NewRevision(path, "Installed", info.ActualSizeBytes)),
        ]));
    }

    [Fact]
    public async Task AStandaloneRunsAtOnceWhileItsPageShowsTheCopyToIndependence()
    {
        await using var tab = await browser.OpenConsoleAsync(viewport: Laptop);
        var (host, page) = tab;
        await AddTemplateWithDataAsync(host, "big-template", 256L << 20);
        await ConsolePage.OpenAsync(page, "/create/standalone?source=big-template&purpose=untrusted");
        var next = page.Locator("#wizard-next");
        await Expect(page.Locator("#purpose-untrusted")).ToHaveAttributeAsync("aria-checked", "true");
        await next.ClickAsync();
        await Expect(page.Locator("#source-big-template")).ToHaveAttributeAsync("aria-checked", "true");
        await next.ClickAsync();
        await page.Locator("input#wizard-name").FillAsync("sandbox");
        await Expect(page.Locator(".qw-name-problem")).ToHaveCountAsync(0);
        await next.ClickAsync();
        await ExpectStepAsync(page, "resources");
        await next.ClickAsync();
        await ExpectStepAsync(page, "review");
        await Expect(page.Locator("#review-space-text")).ToContainTextAsync("It is usable at once and becomes independent of big-template in the background");
        await SettledAsync(page.Locator("#wizard-create"), enabled: true);

        // The copy is held at its start (the test takes the qube's storage lock, which the detach's first step waits
        // for), so the page is seen while the qube depends on its template, whatever this machine's speed.
        var hold = await host.Get<RootLocks>().LockAsync("sandbox", CancellationToken.None);
        try
        {
            await page.Locator("#wizard-create").ClickAsync();
            await Expect(page).ToHaveURLAsync(host.BaseUrl + "/qubes/sandbox");
            await Expect(page.Locator("#qube-independence")).ToHaveAttributeAsync("data-state", "copying");
            await Expect(page.Locator("#independence-text")).ToHaveTextAsync("Depends on big-template revision 1, 0% copied");
            await Expect(page.Locator("#independence-note")).ToContainTextAsync("It can start and run meanwhile");
            await Screenshots.SaveAsync(page, "standalone-8-copying");
        }
        finally
        {
            hold.Dispose();
        }

        // Started at once, while the copy runs; then independent.
        await ConsolePage.Button(page, "Start sandbox").ClickAsync();
        await Expect(page.Locator("#qube-header [data-state]")).ToHaveAttributeAsync("data-state", "running");
        await Expect(page.Locator("#qube-independence")).ToHaveAttributeAsync("data-state", "independent", new() { Timeout = 60_000 });
        await Expect(page.Locator("#independence-text")).ToHaveTextAsync("Independent: its root reads nothing from another qube.");
        await Screenshots.SaveAsync(page, "standalone-9-independent");
        Assert.Null((await QemuImg.InfoAsync(Path.Combine(host.DataDir, "pool", "sandbox", RootFiles.Revision(1)))).BackingFile);
        var detach = (await host.Get<JobEngine>().QueryAsync(new JobQuery { Target = "sandbox" })).Single(j => JobKind.Detach.Is(j));
        Assert.Equal(JobState.Succeeded, detach.State);
    }
}
