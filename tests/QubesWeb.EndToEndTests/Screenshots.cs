// Screenshots land in <repo>/artifacts/screenshots (git-ignored), for people to look at after a run.

namespace QubesWeb.EndToEndTests;

public static class Screenshots
{
    private static readonly Lazy<string> Folder = new(() =>
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "QubesWeb.sln"))) dir = dir.Parent;
        if (dir is null) throw new DirectoryNotFoundException($"No QubesWeb.sln above {AppContext.BaseDirectory}.");
        return Directory.CreateDirectory(Path.Combine(dir.FullName, "artifacts", "screenshots")).FullName;
    });

    public static string Dir => Folder.Value;

    public static async Task<string> SaveAsync(IPage page, string name)
    {
        var path = Path.Combine(Folder.Value, name + ".png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        return path;
    }

    /// <summary>
    /// A full-page screenshot from the top (after a click far down the page, the fixed app bar would otherwise be
    /// drawn across the middle of the image), once finite animations such as a dialog's opening have finished.
    /// </summary>
    public static async Task<string> SaveSettledAsync(IPage page, string name)
    {
        await page.EvaluateAsync("""
            () => {
                window.scrollTo(0, 0);
                return Promise.all(document.getAnimations()
                    .filter(a => a.effect?.getComputedTiming().iterations !== Infinity)
                    .map(a => a.finished.catch(() => null)));
            }
            """);
        return await SaveAsync(page, name);
    }
}
