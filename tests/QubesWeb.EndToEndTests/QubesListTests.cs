// The qubes list as Qube Manager users use it: several qubes at once, the keyboard, the columns they keep.
using QubesWeb.Data.Jobs;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Jobs;

namespace QubesWeb.EndToEndTests;

public sealed class QubesListTests(BrowserFixture browser) : IClassFixture<BrowserFixture>
{
    [Fact]
    public async Task ABulkStartAndShutdownActOnTheThreeSelectedQubesOnly()
    {
        await using var tab = await browser.OpenConsoleAsync();
        var (host, page) = tab;
        await ConsolePage.OpenAsync(page, "/qubes");
        string[] three = ["vault", "banking", "media"];
        await SelectAsync(page, three);
        await Screenshots.SaveAsync(page, "qubes-bulk-selected");

        await page.Locator("#bulk-start").ClickAsync();
        foreach (var name in three)
            await Expect(ConsolePage.StateOf(page, name)).ToHaveAttributeAsync("data-state", "running");
        // Not selected, not touched.
        await Expect(ConsolePage.StateOf(page, "untrusted")).ToHaveAttributeAsync("data-state", "halted");
        await Expect(page.Locator("#bulk-bar")).ToHaveCountAsync(0);
        // A start task holds its qube until it ends, a moment after the qube shows running; a shutdown asked
        // before that is refused (with a message saying so). A user waits for the tasks; so does the test.
        await Eventually.UntilAsync(async () =>
            (await host.Get<JobEngine>().QueryAsync(new JobQuery { States = [JobState.Queued, JobState.Running] })).Count == 0,
            "the start tasks to end", TimeSpan.FromMilliseconds(BrowserFixture.WaitMs));

        await SelectAsync(page, three);
        await page.Locator("#bulk-shutdown").ClickAsync();
        try
        {
            foreach (var name in three)
                await Expect(ConsolePage.StateOf(page, name)).ToHaveAttributeAsync("data-state", "halted");
        }
        catch (PlaywrightException e)
        {
            // Say what the tasks did, so that a failure names the refusal or the task that failed.
            var jobs = await host.Get<JobEngine>().RecentAsync(20);
            throw new Xunit.Sdk.XunitException(e.Message + "\nTasks:\n" + string.Join("\n",
                jobs.Select(j => $"  #{j.Id} {j.Kind} {j.Target}: {j.State} {j.Step} {j.Error}")) +
                "\nPage says: " + await page.Locator(".mud-snackbar").AllInnerTextsAsync().ContinueWith(t => string.Join(" | ", t.Result)));
        }
        Assert.All(three, n => Assert.Equal(RunState.Halted, host.Get<IHypervisor>().GetDomain(n)!.State));
        await Screenshots.SaveAsync(page, "qubes-bulk-done");
    }

    [Fact]
    public async Task SlashFocusesTheSearchAndAHiddenColumnStaysHiddenAfterAReload()
    {
        await using var tab = await browser.OpenConsoleAsync();
        var (_, page) = tab;
        await ConsolePage.OpenAsync(page, "/qubes");
        // The shortcut is live once the page has registered it.
        await Expect(page.Locator("#qube-search[data-slash=ready]")).ToHaveCountAsync(1);
        await page.Locator("body").ClickAsync(new LocatorClickOptions { Position = new Position { X = 5, Y = 300 } });
        await page.Keyboard.PressAsync("/");
        await page.Keyboard.TypeAsync("vau");
        await Expect(page.Locator("#qube-search")).ToHaveValueAsync("vau");
        await Expect(page.Locator("#qubes-grid span.qw-name")).ToHaveCountAsync(1);
        await Expect(ConsolePage.QubeRow(page, "vault")).ToHaveCountAsync(1);

        var header = page.Locator("#qubes-grid thead th").Filter(new LocatorFilterOptions { HasText = "VCPUs" });
        await Expect(header).ToHaveCountAsync(1);
        await page.Locator("#column-menu button").First.ClickAsync();
        await page.Locator("[data-column=vcpus]").ClickAsync();
        await Expect(header).ToHaveCountAsync(0);

        await ConsolePage.OpenAsync(page, "/qubes");
        await Expect(ConsolePage.QubeRow(page, "work")).ToHaveCountAsync(1);
        await Expect(header).ToHaveCountAsync(0);
        await Screenshots.SaveAsync(page, "qubes-column-hidden");
    }

    /// <summary>Ticks each qube's box and, as a user does, sees the count go up before the next one.</summary>
    private static async Task SelectAsync(IPage page, string[] names)
    {
        for (var i = 0; i < names.Length; i++)
        {
            await ConsolePage.QubeRow(page, names[i]).Locator("input[type=checkbox]").ClickAsync();
            await Expect(page.Locator("#bulk-bar")).ToContainTextAsync($"{i + 1} selected");
        }
    }
}
