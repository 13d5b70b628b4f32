// The qube page in the browser, on the console's own demo estate: reached from the list, an invalid edit refused with
// the rule named and nothing changed, and the remove dialog's refusal for a template that qubes depend on.
using QubesWeb.Data.Qubes;

namespace QubesWeb.EndToEndTests;

public sealed class QubeDetailTests(BrowserFixture browser) : IClassFixture<BrowserFixture>
{
    [Fact]
    public async Task SettingMemoryTo0IsRefusedWithTheRuleAndAReloadShowsTheOldMemory()
    {
        await using var tab = await browser.OpenConsoleAsync();
        var (host, page) = tab;
        // From the list: the name links to the qube's page.
        await ConsolePage.OpenAsync(page, "/qubes");
        await ConsolePage.QubeRow(page, "work").Locator("a").ClickAsync();
        await Expect(page).ToHaveURLAsync(host.BaseUrl + "/qubes/work");
        await Expect(page.Locator("#qube-title")).ToHaveTextAsync("work");
        await Expect(page.Locator("#qube-header [data-state]")).ToHaveAttributeAsync("data-state", "running");
        var memory = page.Locator("input#qube-memory");
        await Expect(memory).ToHaveValueAsync("2000");
        await Expect(page.Locator("#qube-next-start")).ToContainTextAsync("changes to memory and VCPUs apply at its next start");
        await Screenshots.SaveAsync(page, "qube-work");

        await memory.FillAsync("0");
        await page.Locator("#qube-save").ClickAsync();

        await Expect(page.Locator("#qube-save-error")).ToHaveTextAsync("Memory must be between 128 and 1048576 MiB; 0 was given.");
        await Screenshots.SaveAsync(page, "qube-work-memory-refused");
        Assert.Equal(2000, (await host.Get<Inventory>().GetAsync("work")).MemoryMiB);

        await ConsolePage.OpenAsync(page, "/qubes/work");
        await Expect(page.Locator("input#qube-memory")).ToHaveValueAsync("2000");
        await Expect(page.Locator("#qube-save-error")).ToHaveCountAsync(0);
    }

    [Fact]
    public async Task RemovingATemplateThatQubesDependOnIsRefusedNamingThem()
    {
        await using var tab = await browser.OpenConsoleAsync();
        var (host, page) = tab;
        await ConsolePage.OpenAsync(page, "/qubes/debian-13");
        await Expect(page.Locator("#qube-title")).ToHaveTextAsync("debian-13");
        await Screenshots.SaveAsync(page, "qube-debian-13");

        await page.Locator("#qube-remove").ClickAsync();

        await Expect(page.Locator("#remove-error")).ToHaveTextAsync(
            "'debian-13' is the template of 4 qube(s): banking, mail, media, vault. Switch them to another template or remove them first.");
        await Expect(page.Locator("#remove-confirm")).ToBeDisabledAsync();
        await Screenshots.SaveAsync(page, "qube-debian-13-remove-refused");
        Assert.NotNull(await host.Get<Inventory>().FindAsync("debian-13"));

        await ConsolePage.OpenAsync(page, "/qubes/dom0");
        await Expect(page.Locator("#qube-readonly")).ToContainTextAsync("read-only");
        await Expect(page.Locator("#qube-save")).ToHaveCountAsync(0);
        await Screenshots.SaveAsync(page, "qube-dom0");

        await ConsolePage.OpenAsync(page, "/qubes/no-such-qube");
        await Expect(page.Locator("#qube-missing")).ToHaveTextAsync("There is no qube named 'no-such-qube'.");
    }

    [Fact]
    public async Task RemovingAHaltedQubeAfterTypingItsNameReturnsToTheListWithoutIt()
    {
        await using var tab = await browser.OpenConsoleAsync();
        var (host, page) = tab;
        await ConsolePage.OpenAsync(page, "/qubes/vault");
        await page.Locator("#qube-remove").ClickAsync();
        var confirm = page.Locator("#remove-confirm");
        await Expect(confirm).ToBeDisabledAsync();
        await page.Locator("input#remove-confirm-name").FillAsync("vault");
        await Expect(confirm).ToBeEnabledAsync();
        // The palette's error red once the button's colour transition has run: it looks as enabled as it is.
        await Expect(confirm).ToHaveCSSAsync("background-color", "rgb(244, 67, 54)");
        await Screenshots.SaveAsync(page, "qube-vault-remove-confirm");

        await confirm.ClickAsync();

        await Expect(page).ToHaveURLAsync(host.BaseUrl + "/qubes");
        await Expect(ConsolePage.QubeRow(page, "work")).ToHaveCountAsync(1);
        await Expect(ConsolePage.QubeRow(page, "vault")).ToHaveCountAsync(0);
        Assert.Null(await host.Get<Inventory>().FindAsync("vault"));
    }
}
