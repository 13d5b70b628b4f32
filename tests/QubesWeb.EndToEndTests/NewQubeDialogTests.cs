// The New qube dialog as a user meets it: the name rules said in words as they type, the engine's own refusal, and a
// created qube appearing in the list without a reload.
using QubesWeb.Data.Jobs;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Jobs;
using QubesWeb.Services.Qubes;

namespace QubesWeb.EndToEndTests;

public sealed class NewQubeDialogTests(BrowserFixture browser) : IClassFixture<BrowserFixture>
{
    [Fact]
    public async Task TheNameRulesAreShownAsTypedAndAValidNewQubeAppearsHaltedWithoutReload()
    {
        await using var tab = await browser.OpenConsoleAsync();
        var (host, page) = tab;
        await ConsolePage.OpenAsync(page, "/qubes");
        await page.EvaluateAsync("() => { window.qwSamePage = 'still here'; }");
        await page.Locator("#new-qube").ClickAsync();
        var dialog = page.Locator(".mud-dialog").Filter(new LocatorFilterOptions { Has = page.Locator("#new-qube-name") });
        await Expect(dialog).ToBeVisibleAsync();
        var name = page.Locator("#new-qube-name");
        var create = page.Locator("#new-qube-create");
        var problems = page.Locator(".qw-name-problem");

        await name.FillAsync("1stVM");
        await Expect(problems.Filter(new LocatorFilterOptions { HasText = "A name must start with a letter (a-z or A-Z)." })).ToBeVisibleAsync();
        await Expect(create).ToBeDisabledAsync();
        await Screenshots.SaveAsync(page, "new-qube-bad-name");

        await name.FillAsync("sys-net");
        await Expect(problems).ToHaveTextAsync(["A qube named 'sys-net' already exists."]);
        await Expect(create).ToBeDisabledAsync();

        // Taken after the dialog loaded its list: the form cannot know, the engine refuses and the dialog says so.
        await SucceedsAsync(host, JobKind.Create, "raced", new CreateQubeRequest(QubeClass.AppVM, "blue", "fedora-42", "sys-firewall"));
        await name.FillAsync("raced");
        await Expect(problems).ToHaveCountAsync(0);
        await Expect(create).ToBeEnabledAsync();
        await create.ClickAsync();
        await Expect(page.Locator("#new-qube-error")).ToContainTextAsync("A qube named 'raced' already exists; choose another name.");
        await Expect(dialog).ToBeVisibleAsync();
        await Screenshots.SaveAsync(page, "new-qube-engine-error");

        await name.FillAsync("project-y");
        await Expect(problems).ToHaveCountAsync(0);
        await Expect(create).ToBeEnabledAsync();
        await create.ClickAsync();

        await Expect(dialog).ToHaveCountAsync(0);
        await Expect(ConsolePage.QubeRow(page, "project-y")).ToHaveCountAsync(1);
        await Expect(ConsolePage.StateOf(page, "project-y")).ToHaveAttributeAsync("data-state", "halted");
        Assert.Equal("still here", await page.EvaluateAsync<string>("() => window.qwSamePage"));

        // What the dialog's defaults made: label red, the template most qubes use (fedora-42), sys-firewall as netvm.
        var qube = await host.Get<Inventory>().GetAsync("project-y");
        Assert.Equal(("red", "fedora-42", "sys-firewall"), (qube.Label.Name, qube.Template?.Name, qube.NetVm?.Name));
        Assert.Equal(RunState.Halted, host.Get<IHypervisor>().GetDomain("project-y")?.State);
        await Screenshots.SaveAsync(page, "new-qube-created");
    }
}
