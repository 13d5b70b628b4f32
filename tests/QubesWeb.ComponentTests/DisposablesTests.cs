// Disposables on the pages, rendered with bUnit over the real inventory, commands and job engine (the hypervisor is
// the in-memory fake): a disposable template is turned on and made the default on its page, a refusal shows in place,
// "New disposable" launches from the default and opens the new qube's page, and a disposable's page says what it is.
using Microsoft.AspNetCore.Components.Web;
using QubesWeb.Components.Shared;
using QubesWeb.Data.Qubes;
using QubesWeb.Services.Jobs;
using QubesWeb.Services.Disposables;
using QubeDetailPage = QubesWeb.Components.Pages.Qubes.QubeDetail;

namespace QubesWeb.ComponentTests;

public sealed class DisposablesTests : ConsoleTestContext
{
    private IRenderedComponent<QubeDetailPage> RenderPage(string name)
    {
        RenderProviders();
        var cut = Render<QubeDetailPage>(p => p.Add(x => x.Name, name));
        cut.WaitForAssertion(() => Assert.Single(cut.FindAll("#qube-title")), Wait);
        return cut;
    }

    private async Task MakeDisposableAsync(string name)
    {
        await Inventory.CreateAllAsync([new NewQube(name, QubeClass.DispVM, "gray", "default-dvm",
            Features: new Dictionary<string, string> { [DisposableFeatures.AutoCleanup] = "True" })]);
        Estate.InventoryChanged();
    }

    [Fact]
    public async Task An_AppVM_is_made_a_disposable_template_and_the_default_on_its_page()
    {
        var cut = RenderPage("default-dvm");
        Assert.Empty(cut.FindAll("#launch-disposable"));

        await cut.InvokeAsync(() => cut.Find("input#disposable-template-switch").Change(true));
        cut.WaitForAssertion(() => Assert.Single(cut.FindAll("#make-default-disposable-template")), Wait);
        Assert.True((await Inventory.GetAsync("default-dvm")).IsDisposableTemplate);
        Assert.Equal("default-dvm", cut.Find("#launch-disposable").GetAttribute("data-disptemplate"));
        Assert.Contains("No disposable of it exists.", cut.Find("#disposables-none").TextContent);

        await (await ClickFreshAsync(cut, () => cut.Find("#make-default-disposable-template")));
        cut.WaitForAssertion(() => Assert.Single(cut.FindAll("#default-disposable-template")), Wait);
        Assert.Equal("default-dvm", await Services.GetRequiredService<DisposableCommands>().DefaultAsync());
    }

    [Fact]
    public async Task Turning_it_off_while_a_disposable_of_it_exists_is_refused_in_place_and_the_disposable_is_listed()
    {
        await Services.GetRequiredService<DisposableCommands>().SetDispTemplateAsync("default-dvm", true);
        await MakeDisposableAsync("disp1234");
        var cut = RenderPage("default-dvm");
        cut.WaitForAssertion(() => Assert.Equal("disp1234", cut.Find("#disposables-list a").GetAttribute("data-disposable")), Wait);

        await cut.InvokeAsync(() => cut.Find("input#disposable-template-switch").Change(false));
        cut.WaitForAssertion(() => Assert.Equal("'default-dvm' is the disposable template of disp1234; remove them before it stops being one.",
            cut.Find("#disposables-error").TextContent.Trim()), Wait);
        Assert.True((await Inventory.GetAsync("default-dvm")).IsDisposableTemplate);
    }

    [Fact]
    public async Task A_disposables_page_says_it_is_removed_when_it_stops_and_a_named_ones_that_it_is_kept()
    {
        await Services.GetRequiredService<DisposableCommands>().SetDispTemplateAsync("default-dvm", true);
        await MakeDisposableAsync("disp77");
        await Inventory.CreateAllAsync([new NewQube("sys-usb", QubeClass.DispVM, "red", "default-dvm")]);

        var cut = RenderPage("disp77");
        Assert.Equal("true", cut.Find("#disposable-kind").GetAttribute("data-auto-cleanup"));
        Assert.Equal("A disposable from default-dvm: when it stops, it is removed with all its files.", cut.Find("#disposable-kind").TextContent.Trim());
        Assert.Empty(cut.FindAll("#disposable-template-switch"));

        var named = Render<QubeDetailPage>(p => p.Add(x => x.Name, "sys-usb"));
        named.WaitForAssertion(() => Assert.Equal("false", named.Find("#disposable-kind").GetAttribute("data-auto-cleanup")), Wait);
        Assert.StartsWith("A named disposable from default-dvm: kept when it stops", named.Find("#disposable-kind").TextContent.Trim());
    }

    [Fact]
    public async Task New_disposable_launches_from_the_default_and_opens_its_page_and_without_a_default_says_what_to_do()
    {
        RenderProviders();
        var button = Render<NewDisposableButton>(p => p.Add(x => x.Id, "dashboard-new-disposable"));

        await (await ClickFreshAsync(button, () => button.Find("#dashboard-new-disposable")));
        Snackbars.WaitForAssertion(() => Assert.Contains("There is no default disposable template", Snackbars.Markup), Wait);
        Assert.DoesNotContain("/qubes/", Nav.Uri);

        var commands = Services.GetRequiredService<DisposableCommands>();
        await commands.SetDispTemplateAsync("default-dvm", true);
        await commands.SetDefaultAsync("default-dvm");
        await (await ClickFreshAsync(button, () => button.Find("#dashboard-new-disposable")));
        button.WaitForAssertion(() => Assert.Matches("/qubes/disp[0-9]{1,4}$", Nav.Uri), Wait);
        var name = Nav.Uri[(Nav.Uri.LastIndexOf('/') + 1)..];
        var job = (await Jobs.QueryAsync(new JobQuery { Target = name })).Single();
        Assert.True(JobKind.LaunchDisposable.Is(job));
        Assert.Contains($"Launching the disposable {name}", Snackbars.Markup);
    }

    [Fact]
    public async Task The_number_kept_preloaded_is_set_on_the_page_and_more_than_16_is_refused()
    {
        await Services.GetRequiredService<DisposableCommands>().SetDispTemplateAsync("default-dvm", true);
        var cut = RenderPage("default-dvm");
        Assert.True(cut.Find("#preload-save").HasAttribute("disabled"));

        await cut.InvokeAsync(() => cut.Find("input#preload-count").Change("2"));
        await (await ClickFreshAsync(cut, () => cut.Find("#preload-save")));
        cut.WaitForAssertion(() => Assert.Equal(2, Inventory.GetAsync("default-dvm").Result.PreloadMax), Wait);
        Assert.Equal("2", (await Inventory.GetAsync("default-dvm")).Feature(DisposableFeatures.PreloadMax));

        var refused = await Assert.ThrowsAsync<QubeRuleException>(() => Services.GetRequiredService<DisposableCommands>().SetPreloadAsync("default-dvm", 17));
        Assert.Equal("Keep 0 to 16 disposables preloaded; 17 is out of range.", refused.Message);
    }

    [Fact]
    public async Task The_new_qube_dialog_makes_a_named_disposable_on_a_disposable_template()
    {
        await Services.GetRequiredService<DisposableCommands>().SetDispTemplateAsync("default-dvm", true);
        RenderProviders(snackbars: false);
        var service = Services.GetRequiredService<IDialogService>();
        await Dialogs.InvokeAsync(() => service.ShowAsync<QubesWeb.Components.Pages.Qubes.NewQubeDialog>("New qube"));
        Dialogs.WaitForElement("input#new-qube-name", Wait);

        await Dialogs.InvokeAsync(() => Dialogs.FindComponent<MudSelect<QubeClass>>().Instance.ValueChanged.InvokeAsync(QubeClass.DispVM));
        await Dialogs.InvokeAsync(() => Dialogs.Find("input#new-qube-name").Input("sys-usb"));
        await (await ClickFreshAsync(Dialogs, () => Dialogs.Find("#new-qube-create")));

        var job = (await Jobs.QueryAsync(new JobQuery { Target = "sys-usb" })).Single();
        Assert.Equal(Data.Jobs.JobState.Succeeded, (await Jobs.WaitAsync(job.Id, new CancellationTokenSource(Wait).Token)).State);
        var named = await Inventory.GetAsync("sys-usb");
        Assert.Equal((QubeClass.DispVM, "default-dvm", false), (named.Class, named.Template?.Name, named.AutoCleanup));
    }
}
