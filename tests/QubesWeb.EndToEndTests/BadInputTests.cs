// Bad input typed into the console in a real browser: a hostile name in the New qube dialog and oversized notes
// carrying markup on a qube's page are refused with the rule in words, nothing is created or saved, no script runs,
// and the circuit stays up (a field far over 32 KB used to drop it before the rule could speak).
using Microsoft.EntityFrameworkCore;
using QubesWeb.Data;
using QubesWeb.Data.Qubes;

namespace QubesWeb.EndToEndTests;

public sealed class BadInputTests(BrowserFixture browser) : IClassFixture<BrowserFixture>
{
    private const string Markup = "<img src=x onerror=alert(1)>\"><svg onload=alert(1)></script>";

    private static async Task<int> JobCountAsync(ConsoleHost host)
    {
        await using var db = await host.Get<IDbContextFactory<InventoryDbContext>>().CreateDbContextAsync();
        return await db.Jobs.CountAsync();
    }

    [Fact]
    public async Task AHostileNameAndOversizedNotesAreRefusedWithTheRuleAndNothingIsCreatedOrSaved()
    {
        await using var tab = await browser.OpenConsoleAsync();
        var (host, page) = tab;
        var dialogs = new List<string>();
        page.Dialog += (_, d) => { dialogs.Add(d.Message); _ = d.DismissAsync(); };
        var qubesBefore = (await host.Get<Inventory>().ListAsync()).Select(q => q.Name).ToList();
        var jobsBefore = await JobCountAsync(host);
        await ConsolePage.OpenAsync(page, "/qubes");
        await page.Locator("#new-qube").ClickAsync();
        var name = page.Locator("#new-qube-name");
        var create = page.Locator("#new-qube-create");
        var problems = page.Locator(".qw-name-problem");

        await name.FillAsync("../x");
        await Expect(problems.Filter(new LocatorFilterOptions { HasText = "A name must start with a letter (a-z or A-Z)." })).ToBeVisibleAsync();
        await Expect(problems.Filter(new LocatorFilterOptions { HasText = "not '/'" })).ToBeVisibleAsync();
        await Expect(create).ToBeDisabledAsync();

        await name.FillAsync(Markup);
        await Expect(problems.Filter(new LocatorFilterOptions { HasText = "'<'" })).ToBeVisibleAsync();
        await Expect(create).ToBeDisabledAsync();
        // The name is text in its field and in the sentences, never an element of the page.
        await Expect(page.Locator(".mud-dialog img, .mud-dialog [onerror], .mud-dialog [onload]")).ToHaveCountAsync(0);
        await Screenshots.SaveAsync(page, "bad-input-new-qube-name");
        await page.Keyboard.PressAsync("Escape");
        await Expect(name).ToHaveCountAsync(0);

        await ConsolePage.OpenAsync(page, "/qubes/vault");
        var notesBefore = (await host.Get<Inventory>().GetAsync("vault")).Notes;
        var notes = page.Locator("textarea#qube-notes");
        var oversized = Markup + new string('n', QubeRules.MaxNotesLength + 1 - Markup.Length);
        await notes.FillAsync(oversized);
        await page.Locator("#qube-save").ClickAsync();

        await Expect(page.Locator("#qube-save-error")).ToHaveTextAsync(
            $"Notes have at most {QubeRules.MaxNotesLength} characters; these have {QubeRules.MaxNotesLength + 1}.");
        await Expect(page.Locator("#qube-properties img, #qube-properties [onerror], #qube-properties [onload]")).ToHaveCountAsync(0);
        await Screenshots.SaveAsync(page, "bad-input-oversized-notes");
        // The circuit is still up: the form still answers, and Discard brings the saved notes back.
        await page.Locator("#qube-discard").ClickAsync();
        await Expect(notes).ToHaveValueAsync(notesBefore);

        Assert.Equal(notesBefore, (await host.Get<Inventory>().GetAsync("vault")).Notes);
        Assert.Equal(qubesBefore, (await host.Get<Inventory>().ListAsync()).Select(q => q.Name).ToList());
        Assert.Equal(jobsBefore, await JobCountAsync(host));
        Assert.False(Directory.Exists(Path.Combine(host.DataDir, "pool", "x")));
        Assert.Empty(dialogs);
    }
}
